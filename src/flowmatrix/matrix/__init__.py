"""Turn matrices (ingress × egress tables of bytes and packets) into files and pictures.

Aggregation of ingress records into partial matrices, their summation and the
matrix store join this package with the FRP and MG.
"""

from flowmatrix.matrix.plot import heatmap

__all__ = ["heatmap"]

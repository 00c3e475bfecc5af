"""``python -m flowmatrix``: the same as the ``flowmatrix`` command."""

from flowmatrix.cli import main

main()

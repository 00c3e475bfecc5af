"""Dashboard assets (HTML, CSS, vanilla JavaScript) the MG serves under ``/ui``.

Every file the pages load is here, so the dashboard works offline:
``index.html`` (the single page), ``style.css`` and ``app.js`` (login,
overview, traffic matrix heatmap, topology, routing lookup). The router is
:mod:`flowmatrix.mg.web`; the pages read the MG's ``/api/v1`` with the
operator's token.
"""

"""Reports: render results objects as self-contained HTML (charts included, works offline).

It may import the core and the capabilities' result types; it computes nothing itself.
The Vega, Vega-Lite and Vega-Embed builds in ``static/`` are vendored from the npm registry
(BSD-3-Clause, ``static/LICENSES-vega.txt``), so reports never load code from a CDN.
"""

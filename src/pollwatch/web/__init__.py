"""Web dashboard and JSON API (FastAPI, server-rendered templates, vendored Vega).

An interface layer: it composes results, forensics and reports, and computes nothing itself.
"""

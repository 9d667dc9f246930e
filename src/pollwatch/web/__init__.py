"""Web dashboard and JSON API (FastAPI, server-rendered templates, vendored Vega).

An interface layer: it composes results, forensics, reports and video, and computes nothing
itself (the region table and the fingerprint are method results). :func:`.app.create_app`
builds the app from one router per area (:mod:`.static`, :mod:`.imports`, :mod:`.elections`,
:mod:`.analysis`, :mod:`.compare`, :mod:`.video`, :mod:`.audit`, :mod:`.turnout`); routes get
what they share through :mod:`.dependencies`; :mod:`.catalogue` keeps loaded elections,
:mod:`.views` turns results into page data, :mod:`.pages` renders. It may import any layer
below it, never the CLI.
"""

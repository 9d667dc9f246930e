"""Forensics: the established election-forensics methods behind one method contract.

It imports the core (``pollwatch.results`` and the utilities), never the CLI or the web.
See :mod:`pollwatch.forensics.base` for the contract and registry.
"""

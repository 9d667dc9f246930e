"""Results: the election data model, importers, protocol checks, the local store and datasets.

The core layer: it imports only ``pollwatch.settings``, ``pollwatch.errors`` and
``pollwatch.registry``, never a capability or interface package.
"""

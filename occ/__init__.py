"""OCC, the online charging server: gRPC frontend, Redis store, session supervision and the ``occ`` CLI."""

__version__ = "0.1.0"

"""The Diameter Gy/Ro gateway (RFC 6733, RFC 8506, 3GPP TS 32.299): an edge beside ``occ.api`` over the same engine.

python-diameter's codec and dictionary read and write the messages; OCC's own asyncio peers carry them
(``peer.py``). See ``docs/diameter.md`` for the conformance table and the mapping to the gRPC contract.
"""

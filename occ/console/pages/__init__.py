"""The console's pages, one module per part; each exposes ``routes`` (an aiohttp ``RouteTableDef``)."""

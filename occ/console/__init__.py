"""The operator console: a server-rendered web application (aiohttp + Jinja2) for accounts, sessions, xDRs,
tariffs, invoices and the ERP outbox.

It is an edge, beside ``occ.api``: every online change goes through the Admin API over gRPC with the signed-in
user's own bearer token (so the Admin roles decide, and the token's name is recorded as the actor of every money
movement), and every finance page reads the SQL store through ``settlement``'s functions. It never talks to Redis.

| module | role |
|---|---|
| ``web.py`` | the aiohttp application: routes, templates, the middlewares of ``security.py`` |
| ``security.py`` | sign-in sessions (HttpOnly, SameSite cookies, Secure over TLS), CSRF tokens, who may do what |
| ``admin.py`` | the Admin API client: one channel, the user's token on every call, gRPC errors as :class:`AdminError` |
| ``dashboard.py`` | samples the servers' ``/metrics`` and turns them into rates and series |
| ``charts.py`` | inline SVG charts drawn on the server (no JavaScript library) |
| ``pages/`` | one module per part of the console: the handlers, thin, over ``admin.py`` and ``settlement`` |
| ``serve.py`` | ``occ console``: listens (TLS with the server's certificate), prints its address |
"""

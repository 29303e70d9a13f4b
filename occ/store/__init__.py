"""The Redis vocabulary and access of OCC: keys and stream names, the client, the Lua scripts and their runner, the
embedded redis-server. Imports nothing of ours but ``rating_engine`` (settings and metrics come in as arguments)."""

"""The least a Redis ACL user needs to run OCC: its keys and channels (``occ:*``) and the commands it sends.

An administrator creates the user once, e.g. for a user ``occ``::

    ACL SETUSER occ on >PASSWORD resetkeys ~occ:* resetchannels &occ:* -@all +ping +evalsha ...

:func:`setuser_command` gives the whole command (``docs/operations.md`` prints it); OCC then connects with
``redis://occ:PASSWORD@host:port/0`` (or ``redis_username`` / ``redis_password``). The list covers every OCC
process: ``occ serve`` (scripts, reads, the notice channel, ``WAIT``), ``occ settle`` (consumer group, claims,
acknowledgements, trimming) and ``occ reconcile`` / ``occ rerate``. Commands that OCC's Lua scripts call are checked
against the ACL too, so they are listed. ``SCAN`` is needed by ``occ reconcile``; Redis lets it list key names of
any pattern (not their values). Nothing here can flush, reconfigure or shut the server down, and no key outside
``occ:`` can be read or written.
"""

from __future__ import annotations

KEY_PATTERN = "~occ:*"
CHANNEL_PATTERN = "&occ:*"

COMMANDS: tuple[str, ...] = (
    # connection
    "ping", "auth", "hello", "select",
    # running OCC's scripts (occ/store/lua, settlement/lua)
    "evalsha", "script|load",
    # what the scripts call, and direct reads and writes
    "get", "set", "getset", "del", "exists", "expire", "incr",
    "hget", "hmget", "hset", "hgetall",
    "sadd", "srem", "scard", "smembers",
    "zadd", "zrem", "zcard", "zrangebyscore",
    "xadd", "xrange", "xlen", "xtrim", "xack", "xpending", "xreadgroup", "xautoclaim",
    "xgroup|create", "xinfo|groups", "xinfo|stream",
    # notices to switches (aborts, re-authorisations), reconcile's account scan, waiting for replicas
    "publish", "subscribe", "unsubscribe", "scan", "wait",
    # Redis Cluster: the slot map and command table the cluster client reads on start
    "cluster|slots", "cluster|shards", "command",
)  # fmt: skip


def rules() -> list[str]:
    """The ACL rules after the user's name and password: keys, channels, then exactly :data:`COMMANDS`."""
    return ["resetkeys", KEY_PATTERN, "resetchannels", CHANNEL_PATTERN, "-@all", *(f"+{name}" for name in COMMANDS)]


def setuser_command(username: str, password: str) -> list[str]:
    """``ACL SETUSER <username> on ><password> <rules>`` as arguments (``redis-cli`` or a client's
    ``execute_command``). ``password`` may not contain spaces."""
    if not username or " " in username or " " in password or not password:
        raise ValueError("username and password are required and may not contain spaces")
    return ["ACL", "SETUSER", username, "reset", "on", f">{password}", *rules()]

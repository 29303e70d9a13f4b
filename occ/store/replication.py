"""Waiting for replicas: a write is acknowledged only once ``min_replicas`` replicas hold it (Redis ``WAIT``).

Redis replicates asynchronously: a primary that dies a moment after answering may take its last writes with it, and
the replica promoted in its place never had them. With ``min_replicas_acked`` ≥ 1 the store ends every pipeline
that writes with::

    INCR occ:replication:mark       # this connection's write offset becomes the primary's current one
    WAIT <min_replicas> <timeout_ms>

``WAIT`` blocks until that many replicas have acknowledged everything this connection wrote, and the ``INCR`` makes
"everything" mean everything the primary had by then, including writes made by other connections: a request
answered from a stored answer (a repeat after a timeout) was written by an earlier call, perhaps one whose own
``WAIT`` failed. When fewer replicas confirm in time the pipeline's replies are replaced by :class:`NotReplicated`
(the server answers UNAVAILABLE, retriable). The writes themselves are not undone; a retry of the same request (same
session and request number, or the same idempotency key) is answered from what was stored, never charged twice,
and is confirmed by its own ``WAIT``.

Not for Redis Cluster: a cluster pipeline has no single connection to wait on (``occ.settings`` refuses it).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

MARK_KEY = "occ:replication:mark"
"""A counter written before each ``WAIT`` (see the module docstring); nothing reads it."""


class NotReplicated(RedisError):
    """Fewer replicas than required confirmed a write in time: the write may be lost in a failover, so it is not
    acknowledged. Retry the same request: it is idempotent."""

    def __init__(self, acked: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"only {acked} of {wanted} replica(s) confirmed the write within {timeout_ms} ms; retry the same request"
        )
        self.acked, self.wanted = acked, wanted


class ReplicaAck:
    """``WAIT`` after writes: :meth:`add` ends a pipeline with the mark and the wait, :meth:`check` reads them back.

    Attributes:
        min_replicas: replicas that must confirm (≥ 1).
        timeout_ms: how long ``WAIT`` may block.
    """

    def __init__(self, min_replicas: int, timeout_ms: int) -> None:
        if min_replicas < 1 or timeout_ms < 1:
            raise ValueError("min_replicas and timeout_ms must be at least 1")
        self.min_replicas, self.timeout_ms = min_replicas, timeout_ms

    def add(self, pipe: Any) -> None:
        """Append the mark and ``WAIT`` to ``pipe`` (after its writes)."""
        pipe.execute_command("INCR", MARK_KEY)
        pipe.execute_command("WAIT", self.min_replicas, self.timeout_ms)

    def check(self, replies: list[Any]) -> list[Any]:
        """The replies of the pipeline's own commands (the last two, the mark and the wait, taken off), each replaced
        by the error when too few replicas confirmed (:class:`NotReplicated`) or the wait itself failed."""
        *own, mark, acked = replies
        error = self.failure(mark, acked)
        if error is None:
            return own
        return [reply if isinstance(reply, Exception) else error for reply in own]

    def failure(self, mark: Any, acked: Any) -> Exception | None:
        """The error the replies of the mark and the wait mean, or None when enough replicas confirmed."""
        if isinstance(mark, Exception):
            return mark
        if isinstance(acked, Exception):
            return acked
        if int(acked) < self.min_replicas:
            return NotReplicated(int(acked), self.min_replicas, self.timeout_ms)
        return None

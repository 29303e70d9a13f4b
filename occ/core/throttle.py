"""Rate-limited log lines: a fault that repeats (Redis down, a client sending garbage) logs one line per interval
and per kind, with the count of lines left out since the last one, instead of a line (or a traceback) per request.

::

    throttle = Throttle(interval_s=10.0)
    if (dropped := throttle.ready("undecodable")) is not None:
        log.warning("undecodable request (%d more since the last line)", dropped)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

MAX_KINDS = 1024
"""Kinds remembered at once; past that the oldest are forgotten (so a flood of distinct kinds stays bounded)."""


class Throttle:
    """Says whether a log line of some kind may be written now.

    Attributes:
        interval_s: least time between two lines of one kind.
    """

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._kinds: dict[Hashable, tuple[float, int]] = {}  # kind → (when its last line was written, left out since)

    def ready(self, kind: Hashable) -> int | None:
        """The number of lines of ``kind`` left out since the last one written if a line may be written now (the
        caller writes it), or None (the caller stays quiet; it is counted)."""
        now = self._clock()
        last = self._kinds.get(kind)
        if last is not None and now - last[0] < self.interval_s:
            self._kinds[kind] = (last[0], last[1] + 1)
            return None
        if last is None and len(self._kinds) >= MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]
        self._kinds[kind] = (now, 0)
        return 0 if last is None else last[1]

"""A background job run every so often: the sweeper, the tariff watcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``action`` every ``interval_s`` in an owned task (``start``/``close``).

    A run that fails is logged with ``failure`` and the next one happens on time: a background job never dies quietly.
    """

    def __init__(self, action: Callable[[], Awaitable[object]], *, interval_s: float, name: str, failure: str) -> None:
        self.action, self.interval_s, self.name, self.failure = action, interval_s, name, failure
        self._task: asyncio.Task | None = None
        self._closing = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.interval_s)
                return
            try:
                await self.action()
            except Exception:
                log.exception(self.failure)

    async def close(self) -> None:
        """Stop: the run in progress is cancelled, and should the cancel be lost inside a Redis call (Python 3.11's
        ``asyncio.wait_for``, which redis-py uses, can swallow one), the loop still ends when that run returns."""
        self._closing.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

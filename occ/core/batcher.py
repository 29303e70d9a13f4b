"""Micro-batching: process the requests that arrive together as one batch.

One batch costs one vectorised rating and a fixed number of Redis round trips, however many requests it holds.
Batching adapts to load: while fewer than ``max_in_flight`` batches are being processed a request starts a batch at
once (a lone request waits for nothing); when they are all busy, arriving requests gather into the next batch, so
batches grow exactly when the load does. ``window_ms`` adds a fixed wait before each batch (0: none).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    """Feeds ``process`` batches of at most ``max_size`` items, at most ``max_in_flight`` at once; ``submit`` returns
    the item's result.

    ``process`` returns one result per item, an exception instance for an item that failed on its own. If
    ``process`` itself raises, every item of that batch fails with that error (loudly, never silently dropped).
    Owned object: ``start()`` and ``close()``; ``close`` finishes the batches already submitted.
    """

    def __init__(
        self,
        process: Callable[[list[In]], Awaitable[list[Out | Exception]]],
        *,
        window_ms: float,
        max_size: int,
        max_in_flight: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._process, self.window_s, self.max_size, self._on_batch = process, window_ms / 1000, max_size, on_batch
        self.max_in_flight = max_in_flight
        self._items: list[tuple[In, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batcher")

    async def submit(self, item: In) -> Out:
        if self._closing:
            raise RuntimeError("the batcher is closed")
        future = asyncio.get_running_loop().create_future()
        self._items.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._items) < self.max_size and self.window_s > 0 and not self._closing:
                await asyncio.sleep(self.window_s)  # let concurrent requests join the batch
            self._wake.clear()
            while self._items:
                if len(self._running) >= self.max_in_flight:
                    # Busy: requests gather into the next batch while one in flight finishes.
                    await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                batch, self._items = self._items[: self.max_size], self._items[self.max_size :]
                task = asyncio.create_task(self._run_batch(batch))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            if self._closing:
                return

    async def _run_batch(self, batch: list[tuple[In, asyncio.Future]]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(batch))
        try:
            results = await self._process([item for item, _ in batch])
        except Exception as exc:
            log.exception("batch of %d failed", len(batch))
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._running:
            await asyncio.gather(*self._running)
        self._task = None

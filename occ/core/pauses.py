"""What stalls a worker's event loop, measured and kept small: the loop's lag and the garbage collector.

A switch waits on every answer, so a pause of the loop is a pause of every call in flight. :class:`LoopLag` measures
it: a task asks to wake every ``interval_s``; how late the loop wakes it is the lag, handed to ``on_lag`` in seconds
(the server observes it in ``occ_event_loop_lag_seconds``). A stall of d seconds shows as a lag between
``d − interval_s`` and ``d``.

The collector's full collections were the longest stalls (24–36 ms over ≈ 70k tracked objects, nearly all of them
modules, protobuf descriptors and tariffs loaded at start that never become garbage). :func:`freeze_warm_heap`, called
once the worker has started, collects once and moves everything alive into the permanent generation
(``gc.freeze``), which collections never scan again, and raises the thresholds (``GC_THRESHOLDS``) so that young
collections run less often over the short-lived objects of requests. :class:`GcWatch` times every collection and
hands ``(generation, seconds)`` to ``on_pause`` (``occ_gc_pause_seconds``).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

LAG_INTERVAL_S = 0.005
GC_THRESHOLDS = (20_000, 20, 20)
"""Young collections every 20,000 net allocations of tracked objects (Python's default: 700), the middle one every
20 of those, the full one every 20 middle ones (and only once the young survivors reach a quarter of the rest).
Measured in-process on a frozen worker heap, 10,000 StartSessions through the servicer against a real Redis: 110
young collections at 700 (about 7 µs per request), none at 20,000; a young collection over 20,000 new container
objects takes about 0.25 ms of CPU, far below the 5 ms budget."""


class LoopLag:
    """Measures the event loop's lag every ``interval_s`` (owned task: ``start()`` / ``close()``)."""

    def __init__(self, on_lag: Callable[[float], None], *, interval_s: float = LAG_INTERVAL_S) -> None:
        self.on_lag, self.interval_s = on_lag, interval_s
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval_s, on_lag, sleep = self.interval_s, self.on_lag, asyncio.sleep
        while True:
            due = loop.time() + interval_s
            await sleep(interval_s)
            on_lag(max(loop.time() - due, 0.0))

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def freeze_warm_heap(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> int:
    """Collect once, freeze what is alive and set the collector's thresholds; returns the objects frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    return gc.get_freeze_count()


class GcWatch:
    """Times every garbage collection of this process: ``on_pause(generation, seconds)`` (``start()``/``close()``)."""

    def __init__(self, on_pause: Callable[[int, float], None]) -> None:
        self.on_pause = on_pause
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.on_pause(info["generation"], time.perf_counter() - self._started)

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def close(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

"""The event-loop lag watch, the garbage-collection watch and the frozen warm heap (``occ.core.pauses``)."""

from __future__ import annotations

import asyncio
import gc
import time

from occ.core.pauses import GC_THRESHOLDS, GcWatch, LoopLag, freeze_warm_heap


async def test_a_stalled_loop_shows_as_lag_and_an_idle_one_does_not():
    lags: list[float] = []
    watch = LoopLag(lags.append, interval_s=0.005)
    watch.start()
    await asyncio.sleep(0.1)
    idle = list(lags)
    time.sleep(0.05)  # a stall of 50 ms: nothing else runs on the loop meanwhile
    await asyncio.sleep(0.03)
    await watch.close()
    assert len(idle) >= 5 and all(lag >= 0 for lag in lags)
    assert max(lags[len(idle) :]) >= 0.045 - 0.005  # the stall, less at most one interval
    assert sorted(idle)[len(idle) // 2] < 0.045  # the idle loop's median lag is far below the stall


def test_every_collection_is_timed_by_generation():
    pauses: list[tuple[int, float]] = []
    watch = GcWatch(lambda generation, seconds: pauses.append((generation, seconds)))
    watch.start()
    try:
        gc.collect()
    finally:
        watch.close()
    gc.collect()  # after close: not seen
    assert [generation for generation, _ in pauses] == [2] and pauses[0][1] >= 0


def test_the_warm_heap_is_frozen_and_the_thresholds_raised():
    before = gc.get_threshold()
    try:
        frozen = freeze_warm_heap()
        assert frozen == gc.get_freeze_count() > 1000  # at least the modules imported so far
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

"""The micro-batcher: batches follow the load, failures reach every caller."""

from __future__ import annotations

import asyncio

import pytest

from occ.core.batcher import Batcher


async def test_requests_gather_while_a_batch_is_in_flight():
    sizes: list[int] = []
    release = asyncio.Event()

    async def process(items: list[int]) -> list[int]:
        sizes.append(len(items))
        await release.wait()
        return [item * 10 for item in items]

    batcher = Batcher(process, window_ms=0, max_size=4)
    batcher.start()
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)  # a lone request starts a batch at once
    assert sizes == [1]
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(1, 7)]
    await asyncio.sleep(0.01)
    assert sizes == [1]  # the others wait for the batch in flight
    release.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [10, 20, 30, 40, 50, 60]
    assert sizes == [1, 4, 2]  # then they go together, at most max_size at a time
    await batcher.close()


async def test_a_failing_batch_fails_each_of_its_requests_and_per_item_errors_stay_per_item():
    async def process(items: list[int]) -> list[int | Exception]:
        if 99 in items:
            raise RuntimeError("redis is down")
        return [ValueError(f"bad {item}") if item < 0 else item for item in items]

    batcher = Batcher(process, window_ms=0, max_size=8)
    batcher.start()
    results = await asyncio.gather(batcher.submit(1), batcher.submit(-2), return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], ValueError)
    with pytest.raises(RuntimeError, match="redis is down"):
        await batcher.submit(99)
    await batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.submit(1)

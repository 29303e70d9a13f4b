"""erp-sim with faults stacked on one request: a stalled reply the client gave up on, dropped as well. The sim
processes it and says nothing more (no error of its own), and the exporter reconciles it: in the ERP once."""

from __future__ import annotations

import asyncio
import logging

from conftest import IMPATIENT, document, queue, rows

from settlement.export.erp_sim import Injections
from settlement.export.exporter import Exporter


async def test_a_stalled_request_whose_reply_is_also_dropped_is_taken_once_without_an_error(store, sim, caplog):
    caplog.set_level(logging.ERROR)
    doc = document()
    queue(store, doc)
    sim.injections = Injections(stall_next=1, stall_s=0.8, drop_next=1)
    async with Exporter(store, sim.url, options=IMPATIENT) as exporter:
        timed_out = await exporter.run_once()
        assert timed_out.retrying == 1
        deadline = asyncio.get_running_loop().time() + 5
        while sim.faults["dropped"] == 0:  # the sim finished the stalled request after the client hung up
            assert asyncio.get_running_loop().time() < deadline, "the stalled request never finished"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        reconciled = await exporter.run_once()
    assert reconciled.accepted == 1 and reconciled.outcomes[0].reconciled
    assert rows(store)[doc.idempotency_key].state == "ACCEPTED" and len(sim.documents) == 1
    assert [r.getMessage() for r in caplog.records if r.name.startswith("aiohttp")] == []

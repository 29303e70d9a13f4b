"""One ``occ rerate`` from start to end: plan, then write the corrections and apply every owed balance correction.

The steps and why they come in this order are told in :mod:`settlement.rerate`; this object runs them for the
command line (which only parses options and prints) and owns the Redis client the balance corrections go through.
Redis is reached only when a balance correction is owed: a dry run, or a run that changes no balance, needs none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from sqlalchemy import Engine

from occ.store.client import connect
from occ.store.scripts import Store
from rating_engine import CompiledTariff
from settlement import rerate
from settlement.rerate import DEFAULT_LEDGER, Adjustment, Plan

APPLIED = ("ok", "dup")  # what Redis answers when it took (or had taken) a balance correction
PROGRESS_EVERY = 1_000  # accounts written between progress reports


class Corrected(msgspec.Struct, frozen=True, kw_only=True):
    """What a rerate changed, after its plan.

    Attributes:
        run_id: this run's id (in correction descriptions and balance corrections' idempotency keys).
        written: accounts whose corrections were written.
        conflicts: (account, why not) for accounts left as they were (another rerate or billing changed their xDRs).
        adjustments: every owed balance correction sent to Redis (this run's and those earlier runs left).
    """

    run_id: str
    written: int
    conflicts: list[tuple[str, str]]
    adjustments: list[Adjustment]

    @property
    def not_applied(self) -> list[Adjustment]:
        """The balance corrections Redis did not take: they stay owed for the next rerate."""
        return [a for a in self.adjustments if a.outcome not in APPLIED]


class RerateRun:
    """A rerate of the xDRs in ``engine`` with ``tariff``; balance corrections go to the Redis ``redis_url()`` names.

    ``redis_url`` is called only when a correction is to be applied (the server's embedded Redis may be found
    through it, or not running: only a run that needs it fails).
    """

    def __init__(
        self,
        engine: Engine,
        tariff: CompiledTariff,
        *,
        redis_url: Callable[[], str],
        shards: int,
        cluster: bool = False,
    ) -> None:
        self.engine = engine
        self.tariff = tariff
        self.redis_url = redis_url
        self.shards = shards
        self.cluster = cluster

    def plan(
        self, *, from_ms: int, to_ms: int, account: str | None = None, progress: Callable[[Plan], None] | None = None
    ) -> Plan:
        """Step 1: price the xDRs starting in ``[from_ms, to_ms)`` (of ``account``) again; writes nothing."""
        return rerate.plan(self.engine, self.tariff, from_ms=from_ms, to_ms=to_ms, account=account, progress=progress)

    def owed(self) -> int:
        """How many balance corrections (of earlier runs) are written but not yet applied."""
        return len(rerate.owed(self.engine))

    def correct(
        self, plan: Plan, *, ledger_code: int = DEFAULT_LEDGER, progress: Callable[[int, int], None] | None = None
    ) -> Corrected:
        """Steps 2 and 3: write ``plan``'s corrections (``progress(accounts done, accounts)`` every
        :data:`PROGRESS_EVERY` accounts and at the end), then apply every owed balance correction through Redis."""
        run_id = rerate.new_run_id()
        accounts = len(plan.by_account())

        def written(done: int) -> None:
            if progress is not None and (done % PROGRESS_EVERY == 0 or done == accounts):
                progress(done, accounts)

        count, conflicts = rerate.write(self.engine, plan.corrections, run_id=run_id, tariff_hash=self.tariff.hash,
                                        ledger_code=ledger_code, progress=written)  # fmt: skip
        adjustments = asyncio.run(self._apply()) if rerate.owed(self.engine) else []
        return Corrected(run_id=run_id, written=count, conflicts=conflicts, adjustments=adjustments)

    async def _apply(self) -> list[Adjustment]:
        client = connect(self.redis_url(), cluster=self.cluster)
        try:
            return await rerate.apply_adjustments(Store(client, shards=self.shards, cluster=self.cluster), self.engine)
        finally:
            await client.aclose()

"""The tariffs a frontend rates with: the current one, and older ones still pricing open sessions.

A tariff is published to Redis as the msgpack of its model under its content hash (``keys.tariff_blob``) and made
current by writing that hash to ``keys.TARIFF_CURRENT``. Every frontend follows the current hash (``refresh``, run
by the watch every second), so loading a tariff on one frontend switches all of them without a restart. With a
``lease`` only the process holding it watches (once per deployment, not once per worker) and ``announce`` tells
the others when the tariff changed (the server publishes a ``tariff`` notice; every worker refreshes on it, and
on subscribing again after losing Redis); a frontend that publishes a tariff announces it too. A session
is priced to its end with the tariff in force at its start: its hash is stored on the session and ``get`` finds (or
fetches and compiles) that version.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import redis.asyncio as redis

from occ.core.errors import CurrencyChange, NoTariff
from occ.core.periodic import Periodic
from occ.store import keys
from occ.store.lease import Lease
from rating_engine import CompiledTariff, Tariff, compile_tariff, load_tariff

log = logging.getLogger(__name__)
KEEP_VERSIONS = 8


class TariffHolder:
    """Current tariff and recently used versions, by content hash; owns the watch task (``start``/``close``)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        poll_interval_s: float = 1.0,
        on_switch: Callable[[str], None] | None = None,
        lease: Lease | None = None,
        announce: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.client, self._on_switch, self.lease, self._announce = client, on_switch, lease, announce
        self._versions: OrderedDict[str, CompiledTariff] = OrderedDict()
        self._current: CompiledTariff | None = None
        self._job = Periodic(self.watch, interval_s=poll_interval_s, name="tariff-watch",
                             failure="tariff refresh failed; keeping the current tariff")  # fmt: skip

    @property
    def current(self) -> CompiledTariff:
        if self._current is None:
            raise NoTariff("no tariff is loaded: load one with `occ tariff load DIR` or start with --tariff DIR")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    async def publish(self, directory: str | Path, *, label: str = "") -> tuple[CompiledTariff, bool]:
        """Load, validate and compile ``directory``, store it in Redis and make it current for every frontend.

        ``label`` names where the tariff came from in the log (default: the directory).

        Returns the compiled tariff and whether it changed the current one. Raises ``TariffError`` when the
        directory does not validate and ``CurrencyChange`` when its currency differs from the current tariff's
        (nothing is written either way).
        """
        compiled = await asyncio.to_thread(lambda: compile_tariff(load_tariff(directory)))
        if self._current is not None and compiled.tariff.currency != self._current.tariff.currency:
            raise CurrencyChange(
                f"the tariff is in {compiled.tariff.currency}, the current one and its accounts in "
                f"{self._current.tariff.currency}"
            )
        await self.client.set(keys.tariff_blob(compiled.hash), msgspec.msgpack.encode(compiled.tariff), nx=True)
        previous = await self.client.getset(keys.TARIFF_CURRENT, compiled.hash)
        self._remember(compiled)
        self._switch(compiled)
        changed = previous is None or previous.decode() != compiled.hash
        if changed:
            log.info("tariff published", extra={"tariff_hash": compiled.hash, "directory": label or str(directory)})
            if self._announce is not None:
                await self._announce(compiled.hash)
        return compiled, changed

    async def watch(self) -> None:
        """One run of the watch: follow the current tariff (if this process holds the lease, when there is one) and
        announce a change to the other workers."""
        if self.lease is not None and not await self.lease.hold():
            return
        if await self.refresh() and self._announce is not None:
            await self._announce(self.current.hash)

    async def refresh(self) -> bool:
        """Follow the current tariff hash in Redis; returns True when the current tariff changed."""
        current = await self.client.get(keys.TARIFF_CURRENT)
        if current is None or (self._current is not None and self._current.hash == current.decode()):
            return False
        self._switch(await self.get(current.decode()))
        log.info("tariff switched", extra={"tariff_hash": current.decode()})
        return True

    def _switch(self, compiled: CompiledTariff) -> None:
        self._current = compiled
        if self._on_switch is not None:
            self._on_switch(compiled.hash)

    async def get(self, tariff_hash: str) -> CompiledTariff:
        """The compiled tariff with this content hash (fetched from Redis and compiled if not at hand)."""
        found = self._versions.get(tariff_hash)
        if found is not None:
            self._versions.move_to_end(tariff_hash)
            return found
        blob = await self.client.get(keys.tariff_blob(tariff_hash))
        if blob is None:
            raise NoTariff(f"tariff {tariff_hash} is not stored in Redis")
        tariff = msgspec.msgpack.decode(blob, type=Tariff)
        compiled = await asyncio.to_thread(compile_tariff, tariff)
        return self._remember(compiled)

    def _remember(self, compiled: CompiledTariff) -> CompiledTariff:
        self._versions[compiled.hash] = compiled
        self._versions.move_to_end(compiled.hash)
        while len(self._versions) > KEEP_VERSIONS:
            self._versions.popitem(last=False)
        return compiled

    async def start(self) -> None:
        await self.refresh()
        self._job.start()

    async def close(self) -> None:
        """Stop watching and give the lease up, so that another worker takes the watch over at once."""
        await self._job.close()
        if self.lease is not None:
            await self.lease.release()

"""A tariff loaded through one frontend reaches every frontend on the same Redis without a restart; a session keeps
the tariff it started with to its end.

Prices for a UK mobile call at Monday 09:00 UTC on examples/tariff (MOBILE: 0.05 connect + 0.12/min per second):
60 s = 0.170000; with MOBILE's price raised to 0.24/min: 60 s = 0.290000.
"""

from __future__ import annotations

import asyncio
import shutil
import time

from online_app import EXAMPLE_TARIFF, MONDAY_PEAK, serving, session, voice

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

MOBILE = "+447700900123"
OLD_MINUTE, OLD_TWO_MINUTES, NEW_MINUTE = 170_000, 290_000, 290_000  # 0.05 + 0.12; 0.05 + 2 × 0.12; 0.05 + 0.24
TEN_EUR = 10_000_000


def authorize_a_minute(subscriber: str) -> pb.AuthorizeRequest:
    request = pb.AuthorizeRequest(subscriber=subscriber, service=pb.VOICE, called_party=MOBILE, max_units=60)
    request.event_time.seconds = MONDAY_PEAK
    return request


async def test_a_tariff_loaded_on_one_frontend_prices_new_calls_on_the_other(redis_url, tmp_path):
    dearer = tmp_path / "dearer"
    shutil.copytree(EXAMPLE_TARIFF, dearer)
    intervals = dearer / "rate_intervals.csv"
    intervals.write_text(intervals.read_text().replace("MOBILE,0,0.12,60,1", "MOBILE,0,0.24,60,1"))

    async with serving(redis_url, tmp_path / "a") as one, serving(redis_url, tmp_path / "b") as other:
        await one.account("mo", balance=TEN_EUR)
        old_hash = other.app.tariffs.current.hash
        assert one.app.tariffs.current.hash == old_hash
        assert (await other.charging.Authorize(authorize_a_minute("mo"))).cost_micros == OLD_MINUTE
        before = await other.charging.StartSession(session("old-1", 0, "mo", voice(60), called=MOBILE))
        assert before.available_micros == TEN_EUR - OLD_MINUTE  # held at the old price

        loaded = await one.admin.LoadTariff(admin.LoadTariffRequest(directory=str(dearer)))
        assert loaded.changed and loaded.tariff_hash != old_hash

        # The other frontend's watcher (polling every second) picks the new tariff up: no restart, no call.
        deadline = time.monotonic() + 3
        while other.app.tariffs.current.hash != loaded.tariff_hash:
            assert time.monotonic() < deadline, "the other frontend did not follow the new tariff within 3 s"
            await asyncio.sleep(0.05)
        assert (await other.charging.Authorize(authorize_a_minute("mo"))).cost_micros == NEW_MINUTE

        # A session started before the change is priced with its start tariff to its end, on either frontend.
        update = await other.charging.UpdateSession(session("old-1", 1, "mo", voice(60, used=60), called=MOBILE))
        assert (update.cost_micros, update.balance_micros) == (OLD_MINUTE, TEN_EUR - OLD_MINUTE)
        end = await one.charging.EndSession(session("old-1", 2, "mo", voice(used=60), called=MOBILE))
        assert end.cost_micros == OLD_TWO_MINUTES

        # A session started after it pays the new price.
        await other.charging.StartSession(session("new-1", 0, "mo", voice(60), called=MOBILE))
        new = await other.charging.EndSession(session("new-1", 1, "mo", voice(used=60), called=MOBILE))
        assert new.cost_micros == NEW_MINUTE

        tariffs = {e["session_id"]: e["tariff"] for e in await one.events("mo") if e["type"] == "session_close"}
        assert tariffs == {"old-1": old_hash, "new-1": loaded.tariff_hash}
        assert (await one.balance("mo")).balance_micros == TEN_EUR - OLD_TWO_MINUTES - NEW_MINUTE


async def test_refresh_follows_the_current_tariff_at_once(redis_url, tmp_path):
    dearer = tmp_path / "dearer"
    shutil.copytree(EXAMPLE_TARIFF, dearer)
    intervals = dearer / "rate_intervals.csv"
    intervals.write_text(intervals.read_text().replace("MOBILE,0,0.12,60,1", "MOBILE,0,0.24,60,1"))

    async with serving(redis_url, tmp_path / "a") as one, serving(redis_url, tmp_path / "b") as other:
        await one.account("mo", balance=TEN_EUR)
        loaded = await one.admin.LoadTariff(admin.LoadTariffRequest(directory=str(dearer)))
        await other.app.tariffs.refresh()
        assert other.app.tariffs.current.hash == loaded.tariff_hash
        assert (await other.charging.Authorize(authorize_a_minute("mo"))).cost_micros == NEW_MINUTE
        assert not await other.app.tariffs.refresh()  # nothing new since

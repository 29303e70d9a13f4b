"""Redis's own limit for OCC's reservation script, measured with ``redis-benchmark`` on a private redis-server.

The harness starts a redis-server (127.0.0.1, a free port, AOF on with ``appendfsync everysec``: what ``occ serve``
starts for itself), creates one account through OCC's own ``account.lua`` and ``transaction.lua`` and loads
``session.lua`` — unchanged, behind a one-line prelude (below) — then lets ``redis-benchmark`` (C, pipelining off)
call it with a realistic start: one request for 60 s of voice to a UK number, as OCC's engine builds it (a grant
ladder, the session's info), every call with a fresh session id. So the figure is what Redis can do with the very
script, per call and per start; OCC's batches put ``batch`` starts in one call.

``redis-benchmark`` takes its arguments from the command line, where a NUL byte cannot go; the msgpack payload is
therefore sent with 0x00 written as 0x01 0x01 and 0x01 as 0x01 0x02, and the prelude undoes that with one
``string.gsub`` over a table (a C loop; the few escapes cost next to nothing). Fresh session ids come from
``redis-benchmark``'s ``__rand_int__``, which it replaces in place with 12 digits, so the msgpack stays valid.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
import redis.asyncio as redis

from occ.store.keys import AccountKeys
from occ.store.process import start_redis_server
from occ.store.scripts import SCRIPTS, Store

ACCOUNT = "rb-00001"
SHARDS = 256
PRELUDE = "ARGV[1] = (string.gsub(ARGV[1], '\\1[\\1\\2]', {['\\1\\1'] = '\\0', ['\\1\\2'] = '\\1'}))\n"
RUN_TIMEOUT_S = 60.0


def escape(payload: bytes) -> bytes:
    """The payload without NUL bytes (0x01 → 0x01 0x02, then 0x00 → 0x01 0x01), as the prelude expects."""
    return payload.replace(b"\x01", b"\x01\x02").replace(b"\x00", b"\x01\x01")


def start_payloads(batch: int, now_ms: int) -> tuple[list[str], bytes]:
    """KEYS and the (unescaped) ARGV[1] of one session.lua call holding ``batch`` starts on one account."""
    store_keys = AccountKeys(ACCOUNT, SHARDS)
    keys = [store_keys.account, store_keys.sessions, store_keys.events, store_keys.deadlines]
    requests = []
    for n in range(batch):
        keys.append(store_keys.session(f"rb-__rand_int__-{n}"))
        # Costs of the example tariff's STANDARD rate (0.20 connect + 0.10 the first minute) for a 60 s ladder.
        ladder = [[units, 300_000] for units in (60, 30, 15, 7, 3, 1)]
        item = {"rg": 100, "svc": "voice", "used": 0, "cost_total": 0, "bp": ladder, "group": "UK_FIXED",
                "ledger": "400000001", "rate": "STANDARD", "extra": 0, "extra_cost": 0, "used_total": 0,
                "requested": 60, "tariff": "0" * 16}  # fmt: skip
        requests.append({
            "t": "start", "sid": f"rb-__rand_int__-{n}", "rn": 0, "acct": ACCOUNT, "now": now_ms, "validity": 60,
            "plan": "retail", "ver": 0, "items": [item],
            "info": {"calling": "", "called": "+442079460000", "dest": "UK_FIXED", "tariff": "0" * 16,
                     "start_s": now_ms // 1000},
            "k": [1, 5 + n, 2, 3, 4],
        })  # fmt: skip
    return keys, msgspec.msgpack.encode(requests)


async def _prepare(url: str) -> str:
    client = redis.from_url(url)
    try:
        store = Store(client, shards=SHARDS, cluster=False)
        await store.load_scripts()
        fields = {"currency": "EUR", "credit_limit": 0, "status": "ACTIVE", "plan": "retail", "tax_profile": "",
                  "created_ms": int(time.time() * 1000)}  # fmt: skip
        await store.write_account(ACCOUNT, "create", fields)
        await store.transact(ACCOUNT, key="rb-top-up", kind="topup", amount_micros=10**15, ledger_code=400000009,
                             description="redis-benchmark account")  # fmt: skip
        sha = await client.script_load(PRELUDE + SCRIPTS["session"].source)
        return sha.decode() if isinstance(sha, bytes) else str(sha)
    finally:
        await client.aclose()


def _check_one(url: str, sha: str, keys: list[str], payload: bytes) -> str:
    """Run the escaped call once from Python and return its first result's status (``ok`` when all is right)."""

    async def once() -> str:
        client = redis.from_url(url)
        try:
            fresh = f"{time.time_ns() % 10**12:012d}"  # not a value redis-benchmark's random ids will have used
            concrete = [key.replace("__rand_int__", fresh) for key in keys]
            argument = escape(payload.replace(b"__rand_int__", fresh.encode()))
            reply = await client.evalsha(sha, len(keys), *concrete, argument)
            return msgspec.msgpack.decode(reply)[0][0]
        finally:
            await client.aclose()

    return asyncio.run(once())


def measure(*, requests: int, clients: int, batches: tuple[int, ...]) -> dict[str, object]:
    """``redis-benchmark`` figures for session.lua starts, per batch size; ``{"status": "skipped"}`` without it."""
    executable = shutil.which("redis-benchmark")
    if executable is None:
        return {"status": "skipped", "reason": "redis-benchmark not installed"}
    results: dict[str, object] = {"status": "measured", "clients": clients, "runs": []}
    with tempfile.TemporaryDirectory(prefix="occ_bench_redis_") as temp:
        server = start_redis_server(Path(temp) / "redis", appendonly=True, appendfsync="everysec")
        try:
            sha = asyncio.run(_prepare(server.url))
            for batch in batches:
                keys, payload = start_payloads(batch, int(time.time() * 1000))
                status = _check_one(server.url, sha, keys, payload)
                if status != "ok":
                    raise RuntimeError(f"session.lua answered {status!r} to the benchmark's start, not 'ok'")
                calls = max(requests // batch, 100)
                opened_before = server.command("SCARD", AccountKeys(ACCOUNT, SHARDS).sessions)
                command = [executable, "-h", "127.0.0.1", "-p", str(server.port), "-c", str(clients), "-n", str(calls),
                           "-r", "1000000000", "--csv", "EVALSHA", sha, str(len(keys)), *keys]  # fmt: skip
                done = subprocess.run([*command, escape(payload)], capture_output=True, timeout=RUN_TIMEOUT_S,
                                      check=True)  # fmt: skip
                rows = list(csv.reader(done.stdout.decode(errors="replace").splitlines()))
                calls_per_s = float(rows[-1][1])
                # Each start opens a session: the count shows the script really did the work (no replays).
                opened = int(server.command("SCARD", AccountKeys(ACCOUNT, SHARDS).sessions)) - int(opened_before)
                results["runs"].append({  # type: ignore[union-attr]
                    "batch": batch, "calls": calls, "calls_per_s": round(calls_per_s),
                    "starts_per_s": round(calls_per_s * batch), "sessions_opened": opened,
                    "p50_ms": float(rows[-1][4]) if len(rows[-1]) > 4 else None,
                })  # fmt: skip
        finally:
            server.stop()
    return results

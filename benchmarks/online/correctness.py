"""After the load: did OCC keep its promises? Read back through the Admin API (no shortcut into Redis).

- **Credit limit.** No account's balance is below −credit limit (every account the run used, via ``GetAccount``).
- **Sessions.** Every session the softswitch started was ended: its accounts list no open session
  (``ListSessions``) except those the switch could not end because a request failed, and those must carry a
  deadline, i.e. the sweeper will close them; nothing stays reserved on an account without open sessions. The
  ceiling phases only start sessions, so theirs are all left to the sweeper: each must carry a deadline.
- **Settlement.** ``occ settle --once`` drains the event streams into the SQL store and ``occ reconcile`` checks
  every balance against its ledger; each is run (exit status 0 = clean) with the server's data dir (where ``occ
  settle`` finds the embedded Redis and the SQLite store) only when this ``occ`` has the command, and is reported as
  "not available" otherwise — never assumed.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.online.accounts import AdminTarget
from occ.api.client import aio_channel
from occ.v1 import admin_pb2, admin_pb2_grpc

ADMIN_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 120.0
IN_FLIGHT = 32
EXAMPLES = 5  # violations listed by name in the report


async def _read_accounts(
    admin_target: AdminTarget, account_ids: Sequence[str]
) -> dict[str, tuple[admin_pb2.Account, list]]:
    """Each account and its open sessions."""
    found: dict[str, tuple[admin_pb2.Account, list]] = {}
    async with aio_channel(admin_target.address, token=admin_target.token) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        todo = iter(account_ids)

        async def worker() -> None:
            for account_id in todo:
                account = await admin.GetAccount(admin_pb2.GetAccountRequest(id=account_id), timeout=ADMIN_TIMEOUT_S)
                listed = await admin.ListSessions(
                    admin_pb2.ListSessionsRequest(account_id=account_id), timeout=ADMIN_TIMEOUT_S
                )
                found[account_id] = (account, list(listed.sessions))

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return found


def check_accounts(admin_target: AdminTarget, *, softswitch_ids: Sequence[str], ceiling_ids: Sequence[str],
                   unended: Sequence[tuple[str, str]]) -> dict[str, object]:  # fmt: skip
    """The credit-limit and session checks (through Admin); ``violations`` counts what broke a promise."""
    found = asyncio.run(_read_accounts(admin_target, [*softswitch_ids, *ceiling_ids]))
    allowed_open = set(unended)
    below_limit, left_open, reserved_without_session, no_deadline = [], [], [], []
    awaiting_sweeper = 0
    for account_id, (account, sessions) in found.items():
        if account.balance_micros < -account.credit_limit_micros:
            below_limit.append(f"{account_id}: balance {account.balance_micros} < −{account.credit_limit_micros}")
        if not sessions and account.reserved_micros != 0:
            reserved_without_session.append(f"{account_id}: {account.reserved_micros} reserved, no open session")
        for session in sessions:
            expected = account_id in ceiling_ids or (account_id, session.session_id) in allowed_open
            if not expected:
                left_open.append(f"{account_id}/{session.session_id}")
            elif session.deadline_unix_ms <= 0:
                no_deadline.append(f"{account_id}/{session.session_id}")
            else:
                awaiting_sweeper += 1
    violations = len(below_limit) + len(left_open) + len(reserved_without_session) + len(no_deadline)
    return {
        "accounts_checked": len(found),
        "below_credit_limit": len(below_limit),
        "sessions_left_open": len(left_open),
        "reserved_without_session": len(reserved_without_session),
        "open_without_deadline": len(no_deadline),
        "sessions_awaiting_sweeper": awaiting_sweeper,
        "softswitch_unended": len(unended),
        "examples": (below_limit + left_open + reserved_without_session + no_deadline)[:EXAMPLES],
        "violations": violations,
    }


def _run(command: list[str], env: dict[str, str]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SETTLE_TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "command": " ".join(command), "seconds": SETTLE_TIMEOUT_S}
    output = (done.stdout + done.stderr).strip().splitlines()
    return {
        "status": "clean" if done.returncode == 0 else "failed",
        "exit_code": done.returncode,
        "command": " ".join(command),
        "seconds": round(time.perf_counter() - started, 2),
        "output_tail": output[-10:],
    }


def settle_and_reconcile(occ: Path, commands: set[str], env: dict[str, str] | None) -> dict[str, object]:
    """``occ settle --once``, then ``occ reconcile``, each run when this ``occ`` has it, with the server's settings in
    ``env`` (None when the server is not one this run started: its settings are unknown here).

    ``status`` is ``clean`` when both ran clean, ``failed`` when one that ran failed, ``incomplete`` when one is not
    there yet (what did run was clean), ``not available`` when neither could run."""
    if env is None:
        return {"status": "not available", "reason": "an external OCC: run occ settle --once and occ reconcile there"}
    steps: dict[str, object] = {}
    for name, command in (("settle", [str(occ), "settle", "--once"]), ("reconcile", [str(occ), "reconcile"])):
        if name not in commands:
            steps[name] = {"status": "not available", "reason": f"this occ has no {name} command"}
            continue
        steps[name] = outcome = _run(command, env)
        if outcome["status"] != "clean":
            return {"status": "failed", **steps}
    ran = [step for step in steps.values() if step["status"] == "clean"]  # type: ignore[index]
    missing = [name for name, step in steps.items() if step["status"] == "not available"]  # type: ignore[index]
    status = "clean" if not missing else "incomplete" if ran else "not available"
    return {"status": status, **({"reason": f"this occ has no {' or '.join(missing)} command"} if missing else {}),
            **steps}  # fmt: skip

"""The benchmark's accounts, created through the Admin API: plenty of credit, or short of it on purpose.

The ceiling phases use ``bench-NNNNN`` accounts topped up with 1,000,000 EUR, so a reservation never runs short and
OCC is compared with the echo server on the same work. The softswitch uses its own ``ss<run>-NNNNN`` accounts (a
fresh set per run, so a run against a long-running OCC starts from known balances): most as rich, a share
(``poor_share``) with 2.00 EUR and a 0.50 EUR credit limit, which a few calls exhaust, so that calls are refused
for credit (4012) and the balance is pushed against the credit limit — what the correctness check then examines.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NamedTuple

import grpc

from occ.api.client import aio_channel
from occ.v1 import admin_pb2, admin_pb2_grpc

RICH_TOP_UP_MICROS = 1_000_000 * 1_000_000  # 1,000,000 EUR
POOR_TOP_UP_MICROS = 2_000_000  # 2.00 EUR
POOR_CREDIT_LIMIT_MICROS = 500_000  # 0.50 EUR below zero
TOP_UP_LEDGER_CODE = 400000009
ADMIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AccountSpec:
    """One account to create.

    Attributes:
        id: the account (subscriber) id.
        top_up_micros: the credit it starts with.
        credit_limit_micros: how far below zero it may go.
    """

    id: str
    top_up_micros: int
    credit_limit_micros: int = 0


def ceiling_accounts(count: int) -> list[AccountSpec]:
    return [AccountSpec(f"bench-{i:05d}", RICH_TOP_UP_MICROS) for i in range(count)]


def softswitch_accounts(count: int, poor_share: float, run_id: str) -> list[AccountSpec]:
    """``count`` accounts, every ``1/poor_share``-th of them short of credit (none when ``poor_share`` is 0)."""
    poor_every = round(1 / poor_share) if poor_share > 0 else 0
    return [
        AccountSpec(f"ss{run_id}-{i:05d}", POOR_TOP_UP_MICROS, POOR_CREDIT_LIMIT_MICROS)
        if poor_every and i % poor_every == poor_every - 1
        else AccountSpec(f"ss{run_id}-{i:05d}", RICH_TOP_UP_MICROS)
        for i in range(count)
    ]


class AdminTarget(NamedTuple):
    """OCC's Admin listener and the bearer token to call it with (``occ serve`` writes one to its data dir)."""

    address: str
    token: str = ""


async def create_accounts(admin_target: AdminTarget, specs: list[AccountSpec], in_flight: int = 32) -> dict[str, int]:
    """Create prepaid accounts (plan ``retail``, EUR) and top each up once; returns counts of what happened."""
    outcome = {"created": 0, "existed": 0, "topped_up": 0}
    async with aio_channel(admin_target.address, token=admin_target.token) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        todo = iter(specs)

        async def worker() -> None:
            for spec in todo:
                account = admin_pb2.Account(id=spec.id, currency="EUR", tariff_plan="retail", status=admin_pb2.ACTIVE,
                                            credit_limit_micros=spec.credit_limit_micros)  # fmt: skip
                try:
                    await admin.CreateAccount(account, timeout=ADMIN_TIMEOUT_S)
                    outcome["created"] += 1
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                        raise
                    outcome["existed"] += 1
                answer = await admin.Transact(
                    admin_pb2.TransactionRequest(
                        account_id=spec.id,
                        type=admin_pb2.TOP_UP,
                        amount_micros=spec.top_up_micros,
                        idempotency_key=f"bench-top-up-{spec.id}",
                        ledger_code=TOP_UP_LEDGER_CODE,
                        description="occ bench top-up",
                    ),
                    timeout=ADMIN_TIMEOUT_S,
                )
                outcome["topped_up"] += not answer.duplicate

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return outcome

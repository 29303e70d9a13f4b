"""The Admin reads the console stands on: ``ListAccounts`` (paging and prefix, single node and cluster), ``WhoAmI``,
``ListSessions`` over every account and ``GetTariff``."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from online_app import EXAMPLE_TARIFF, session, voice

from occ.api.client import aio_channel
from occ.api.tariff_source import local_files
from occ.api.tokens import TOKENS_FILE, TokenFile
from occ.store import keys
from occ.v1 import admin_pb2 as admin
from occ.v1 import admin_pb2_grpc


async def _create(client, *ids: str) -> None:
    for account_id in ids:
        await client.admin.CreateAccount(admin.Account(id=account_id, currency="EUR", tariff_plan="retail"))


async def _every_page(client, *, prefix: str = "", page_size: int) -> list[list[str]]:
    pages, token = [], ""
    while True:
        request = admin.ListAccountsRequest(prefix=prefix, page_size=page_size, page_token=token)
        answer = await client.admin.ListAccounts(request)
        pages.append([account.id for account in answer.accounts])
        token = answer.next_page_token
        if not token:
            return pages


async def test_pages_walk_every_account_once_in_id_order(backend_charging):
    ids = [f"acct-{n:03d}" for n in range(23)] + ["zeta", "alpha", "Émile"]
    await _create(backend_charging, *ids)
    pages = await _every_page(backend_charging, page_size=5)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 5, 1]
    assert [account for page in pages for account in page] == sorted(ids, key=str.encode)


async def test_a_prefix_lists_only_its_accounts_and_pages_stay_inside_it(backend_charging):
    await _create(backend_charging, "shop-1", "shop-2", "shop-3", "shopper", "shoq", "sho", "other")
    assert await _every_page(backend_charging, prefix="shop-", page_size=2) == [["shop-1", "shop-2"], ["shop-3"]]
    assert await _every_page(backend_charging, prefix="shop", page_size=10) == [["shop-1", "shop-2", "shop-3",
                                                                                 "shopper"]]  # fmt: skip
    assert await _every_page(backend_charging, prefix="nobody", page_size=10) == [[]]


async def test_listed_accounts_carry_what_get_account_answers(charging):
    await charging.account("rich", balance=7_000_000, credit_limit=1_000_000)
    [listed] = (await charging.admin.ListAccounts(admin.ListAccountsRequest(prefix="rich"))).accounts
    assert listed == await charging.admin.GetAccount(admin.GetAccountRequest(id="rich"))
    assert (listed.balance_micros, listed.available_micros) == (7_000_000, 8_000_000)


@pytest.mark.parametrize("field, value", [("page_size", 1001), ("page_size", -1), ("prefix", "a\nb")])
async def test_a_bad_page_request_is_invalid_argument_naming_the_field(charging, field, value):
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await charging.admin.ListAccounts(admin.ListAccountsRequest(**{field: value}))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in failure.value.details()


async def test_who_am_i_names_the_token_and_its_role(charging, tmp_path):
    token = TokenFile(tmp_path / TOKENS_FILE).create("vera", "viewer")
    async with aio_channel(charging.address, token=token) as channel:
        answer = await admin_pb2_grpc.AdminStub(channel).WhoAmI(admin.WhoAmIRequest())
        assert (answer.name, answer.role, answer.actor) == ("vera", "viewer", "token:vera")
        listed = await admin_pb2_grpc.AdminStub(channel).ListAccounts(admin.ListAccountsRequest())
        assert list(listed.accounts) == []  # a viewer may list


async def test_list_sessions_without_an_account_lists_every_open_session(backend_charging):
    client = backend_charging
    for account_id in ("caller-a", "caller-b"):
        await client.account(account_id, balance=50_000_000)
    await client.charging.StartSession(session("s-a", 0, "caller-a", voice(requested=60)))
    await client.charging.StartSession(session("s-b", 0, "caller-b", voice(requested=60)))
    answer = await client.admin.ListSessions(admin.ListSessionsRequest())
    assert sorted((s.account_id, s.session_id) for s in answer.sessions) == [("caller-a", "s-a"), ("caller-b", "s-b")]
    assert all(s.reserved_micros > 0 for s in answer.sessions)
    assert len((await client.admin.ListSessions(admin.ListSessionsRequest(limit=1))).sessions) == 1


async def test_get_tariff_summarises_the_tariff_in_force(charging):
    info = await charging.admin.GetTariff(admin.GetTariffRequest())
    assert info.tariff_hash == charging.app.tariffs.current.hash
    assert info.currency == "EUR" and "retail" in info.plans
    assert info.prefixes == sum(info.group_prefixes.values()) == len(charging.app.tariffs.current.tariff.prefixes)
    assert info.rates == len(info.rate_names) > 0


async def test_check_tariff_lists_every_finding_and_publishes_nothing(charging, tmp_path):
    current = charging.app.tariffs.current.hash
    files = local_files(Path(EXAMPLE_TARIFF))
    files["rates.csv"] = files["rates.csv"] + b"broken-row-without-fields\n"
    answer = await charging.admin.CheckTariff(admin.LoadTariffRequest(files=files))
    assert answer.findings and all(f.file == "rates.csv" and f.line > 0 for f in answer.findings)
    assert charging.app.tariffs.current.hash == current


async def test_check_tariff_summarises_a_good_tariff_without_publishing_it(charging, tmp_path):
    current = charging.app.tariffs.current.hash
    files = local_files(Path(EXAMPLE_TARIFF))
    files["tariff.csv"] = files["tariff.csv"].replace(b"OCC example tariff", b"OCC example tariff v2")  # another hash
    answer = await charging.admin.CheckTariff(admin.LoadTariffRequest(files=files))
    assert not answer.findings and answer.changed and answer.tariff.tariff_hash == answer.tariff_hash != current
    assert charging.app.tariffs.current.hash == current


async def test_accounts_made_before_the_index_are_added_to_it_once(backend_charging):
    """An account hash written as an older OCC did (no index entry), and the marker of a finished back-fill unset."""
    store = backend_charging.app.store
    await _create(backend_charging, "new-one")
    old = store.keys("old-one")
    await store.client.hset(old.account, mapping={"balance": 0, "reserved": 0, "currency": "EUR", "plan": "retail"})
    await store.client.delete(keys.ACCOUNTS_INDEXED)
    assert await store.index_accounts() == 1  # old-one: its :txn and other hashes are not accounts
    assert await store.index_accounts() == 0  # once
    listed = await backend_charging.admin.ListAccounts(admin.ListAccountsRequest(prefix=""))
    assert [account.id for account in listed.accounts] == ["new-one", "old-one"]

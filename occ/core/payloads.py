"""Requests → the batch scripts' payloads (``occ.store.shapes``), with the keys each touches."""

from __future__ import annotations

from occ.core.rating import Account, Rated
from occ.core.requests import Kind, Work
from occ.store.scripts import KeyedRequest, Store
from occ.store.shapes import CloseRequest, EventRequest, ReadRequest, SessionItem, SessionRequest, StartInfo

SESSION_KINDS = (Kind.START, Kind.UPDATE, Kind.END)


def read_request(store: Store, work: Work) -> KeyedRequest:
    """What ``read.lua`` reads for ``work``: its account, and its session (or event answers) if it has one."""
    keys = store.keys(work.subscriber)
    if work.kind in SESSION_KINDS:
        key_list = [keys.account, keys.session(work.session_id)]
    elif work.kind is Kind.EVENT:
        key_list = [keys.account, keys.event_answers(work.session_id)]
    else:
        key_list = [keys.account]
    rgs = [quota.rating_group for quota in work.quotas]
    payload = ReadRequest(acct=work.subscriber, rn=work.request_number, rgs=rgs, owned=work.kind in SESSION_KINDS)
    return KeyedRequest(keys.shard, key_list, payload)


def session_request(store: Store, work: Work, items: list[Rated], *, account: Account, session: list | None,
                    tariff_hash: str, validity_time_s: int, probe: bool = False) -> KeyedRequest:  # fmt: skip
    """A start, update or end for ``session.lua``; ``items`` are its rated quota items (none for a refusal, which
    the script answers before looking at items)."""
    keys = store.keys(work.subscriber)
    payload = SessionRequest(
        t=work.kind.value,
        sid=work.session_id,
        rn=work.request_number,
        acct=work.subscriber,
        now=work.now_ms,
        validity=validity_time_s,
        plan=account.plan,
        ver=int(session[1]) if session else 0,
        items=[_session_item(quota, item) for quota, item in zip(work.quotas, items, strict=True)] if items else [],
        probe=probe,
    )
    if work.kind is Kind.START:
        payload.info = StartInfo(calling=work.calling, called=work.called, dest=work.destination,
                                 tariff=tariff_hash, start_s=work.event_time_s)  # fmt: skip
    return KeyedRequest(keys.shard, keys.session_script(work.session_id), payload)


def _session_item(quota, item: Rated) -> SessionItem:
    return SessionItem(
        rg=quota.rating_group,
        svc=quota.service.name.lower(),
        used=quota.used,
        used_total=item.used_total,
        requested=item.requested,
        cost_total=item.cost_total,
        bp=item.breakpoints,
        group=item.group,
        ledger=item.ledger,
        rate=item.rate,
        fail=item.failure,
        reason=item.reason,
    )


def event_request(store: Store, work: Work, item: Rated, *, account: Account, tariff_hash: str) -> KeyedRequest:
    """A direct debit or refund for ``event.lua``, priced."""
    keys = store.keys(work.subscriber)
    payload = EventRequest(
        sid=work.session_id,
        rn=work.request_number,
        acct=work.subscriber,
        now=work.now_ms,
        action=work.action.value,
        plan=account.plan,
        cost=item.cost_total,
        units=work.units,
        rg=work.rating_group,
        svc=work.service.name.lower(),
        group=item.group,
        ledger=item.ledger,
        rate=item.rate,
        tariff=tariff_hash,
        calling=work.calling,
        called=work.called,
        start_s=work.event_time_s,
    )
    return KeyedRequest(keys.shard, [keys.account, keys.event_answers(work.session_id), keys.events], payload)


def close_request(store: Store, account_id: str, session_id: str, *, cause: str, now_ms: int, validity_time_s: int = 0,
                  reason: str = "") -> KeyedRequest:  # fmt: skip
    """A close for ``session.lua``: TIMEOUT (the sweeper) or ABORTED (an administrator, with validity and reason)."""
    account = store.keys(account_id)
    payload = CloseRequest(t="close", sid=session_id, acct=account_id, now=now_ms, cause=cause,
                           validity=validity_time_s, reason=reason)  # fmt: skip
    return KeyedRequest(account.shard, account.session_script(session_id), payload)

"""Outcomes of the engine's steps: from a script's answer, from the read alone, or from rating alone."""

from __future__ import annotations

from occ.core.errors import InvalidRequest
from occ.core.rating import Account, Rated
from occ.core.requests import (
    Action,
    AuthorizeOutcome,
    BalanceOutcome,
    Code,
    EventOutcome,
    Kind,
    Outcome,
    QuotaOutcome,
    SessionOutcome,
    Work,
)

REASONS = {
    Code.CREDIT_LIMIT_REACHED: "not enough credit for the smallest grant",
    Code.END_USER_SERVICE_DENIED: "the account is blocked",
    Code.USER_UNKNOWN: "no account with this subscriber id",
}


def replay(work: Work, answer: list, currency: str) -> Outcome:
    """An outcome from a script's answer (a fresh one, or one stored for a repeated request)."""
    if work.kind is Kind.EVENT:
        return EventOutcome(*answer[:5], currency=currency, reason=REASONS.get(answer[0], ""))
    code, balance, available, cost, items = answer
    quotas = [QuotaOutcome(*item) for item in items or []]
    reason = next((q.reason for q in quotas if q.reason), "") or REASONS.get(code, "")
    return SessionOutcome(code, balance, available, cost, quotas, currency, reason)


def failed(work: Work, code: Code, reason: str, account: Account | None = None) -> Outcome:
    """The outcome of a request refused with ``code`` before any script ran."""
    balance = (account.balance, account.available, account.currency) if account else (0, 0, "")
    if work.kind is Kind.AUTHORIZE:
        return AuthorizeOutcome(
            code, balance_micros=balance[0], available_micros=balance[1], currency=balance[2], reason=reason
        )
    if work.kind is Kind.EVENT:
        return EventOutcome(code, 0, False, *balance, reason=reason)
    if work.kind is Kind.BALANCE:
        return BalanceOutcome(code)
    return SessionOutcome(code, balance[0], balance[1], 0, [], balance[2], reason)


def balance(account: Account) -> BalanceOutcome:
    return BalanceOutcome(
        Code.SUCCESS, account.balance, account.limit, account.reserved, account.available, account.currency
    )


def authorized(item: Rated, account: Account) -> AuthorizeOutcome:
    """An authorization's answer: the longest grant the credit covers (searched exactly), or why there is none."""
    if item.failure:
        return AuthorizeOutcome(
            Code.RATING_FAILED,
            reason=item.reason,
            currency=account.currency,
            balance_micros=account.balance,
            available_micros=account.available,
        )
    units = item.exact_units
    return AuthorizeOutcome(
        Code.SUCCESS if units > 0 else Code.CREDIT_LIMIT_REACHED,
        max_units=units,
        cost_micros=item.exact_cost,
        balance_micros=account.balance,
        available_micros=account.available,
        currency=account.currency,
        destination_group=item.group,
        reason="" if units > 0 else REASONS[Code.CREDIT_LIMIT_REACHED],
    )


def event_without_apply(work: Work, item: Rated, account: Account) -> EventOutcome | None:
    """Events answered from the read alone (rating failures, price enquiries, balance checks), else None."""
    if item.failure:
        return EventOutcome(
            Code.RATING_FAILED, 0, False, account.balance, account.available, account.currency, item.reason
        )
    cost = item.cost_total
    if work.action in (Action.PRICE_ENQUIRY, Action.CHECK_BALANCE):  # both reserve and write nothing
        return EventOutcome(
            Code.SUCCESS, cost, cost <= account.available, account.balance, account.available, account.currency
        )
    return None


def service_changed(work: Work, rgs: list) -> InvalidRequest | None:
    """A rating group keeps the service it began with: its usage and cost are counted in that service's unit."""
    for index, (quota, stored) in enumerate(zip(work.quotas, rgs, strict=False)):
        if len(stored) > 3 and stored[3] and stored[3] != quota.service.name.lower():
            return InvalidRequest(
                f"quotas[{index}].service",
                f"rating group {quota.rating_group} is {stored[3]} in this session; a rating group keeps its service",
            )
    return None

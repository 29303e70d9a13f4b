"""Accounts in the books: whether settlement has recorded an account, and what it recorded of its online settings.

The books know an account from the moment settlement books its ``account`` entry (its creation) or, for an
account made before those entries existed, its first money entry. Until then every finance command that names the
account refuses it with :class:`NotInBooks`, whose message says what to do: run settlement.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from settlement.records import AccountRow
from settlement.store.schema import accounts


class NotInBooks(LookupError):
    """An account the SQL store does not know (yet); the message names it and says how to settle."""

    def __init__(self, account: str) -> None:
        super().__init__(
            f"account {account!r} is not in the books yet: run `occ settle --once` "
            "(or start occ serve's settlement worker)"
        )
        self.account = account


def unknown(connection: Connection, names: Iterable[str]) -> list[str]:
    """Those of ``names`` the books do not know, in the order given (each once)."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    query = select(accounts.c.account).where(accounts.c.account.in_(wanted))
    known = set(connection.execute(query).scalars())
    return [name for name in wanted if name not in known]


def require_known(connection: Connection, names: Iterable[str]) -> None:
    """Raise :class:`NotInBooks` for the first of ``names`` the books do not know."""
    missing = unknown(connection, names)
    if missing:
        raise NotInBooks(missing[0])


def recorded(connection: Connection, account: str) -> AccountRow:
    """What settlement recorded of ``account`` (its settings None until an ``account`` entry is settled);
    :class:`NotInBooks` if nothing."""
    row = connection.execute(select(accounts).where(accounts.c.account == account)).first()
    if row is None:
        raise NotInBooks(account)
    return AccountRow(**row._asdict())

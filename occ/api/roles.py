"""Who may call which Admin method: the one table. A method missing here is refused to every role.

| method | viewer | operator | finance | admin |
|---|---|---|---|---|
| ``GetAccount``, ``ListAccounts``, ``ListSessions``, ``WhoAmI``, ``GetTariff`` | yes | yes | yes | yes |
| ``CreateAccount``, ``AbortSession``, ``LoadTariff`` | | yes | | yes |
| ``UpdateAccount`` (status, plan, credit limit, taxes) | | yes | yes | yes |
| ``Transact`` (top-up, payment, adjustment, refund) | | | yes | yes |
| ``CheckTariff`` (validate a tariff, publish nothing) | | yes | yes | yes |

``admin`` may call every method in the table; it is the role of the token ``occ serve`` writes for the local
operator (``<data_dir>/admin-token``).
"""

from __future__ import annotations

from occ.settings import ADMIN_ROLES

ROLES = ADMIN_ROLES
ADMIN = "admin"
_READ = frozenset({"viewer", "operator", "finance"})

METHOD_ROLES: dict[str, frozenset[str]] = {
    "GetAccount": _READ,
    "ListAccounts": _READ,
    "ListSessions": _READ,
    "WhoAmI": _READ,
    "GetTariff": _READ,
    "CreateAccount": frozenset({"operator"}),
    "UpdateAccount": frozenset({"operator", "finance"}),
    "AbortSession": frozenset({"operator"}),
    "LoadTariff": frozenset({"operator"}),
    "CheckTariff": frozenset({"operator", "finance"}),
    "Transact": frozenset({"finance"}),
}


def allowed(method: str, role: str) -> bool:
    """May ``role`` call the Admin method named ``method`` (``Transact``, not its full path)?"""
    roles = METHOD_ROLES.get(method)
    return roles is not None and (role == ADMIN or role in roles)

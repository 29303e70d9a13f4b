"""How one request's credit is shared among its quota items, and where the exact largest grant must be searched for.

Pure: arrays in, arrays out; the search itself (rating) comes in as a function.

``session.lua`` applies a request's items in order, each from what the earlier ones left: it debits the item's
usage (its cumulative cost less what was committed), gives back the item's old hold, and holds the cost of the
largest grant candidate the available credit covers. Rating must therefore look at the items in the same order
(index 0 of every request, then index 1 …), taking from each request's credit what its earlier items will take.
The ladder of candidates (``R, R/2, R/4 …``) is enough where the credit covers the whole request; the exact largest
grant is searched for only where it may not (the ladder's top costs more than the credit left), where the ladder
could not be rated whole, and where the exact figure is the answer (authorizations).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

ExactSearch = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``(items, credit_micros)`` → ``(units, cost_micros)``: for each item (an index into :class:`Items`), the largest
grant whose cost beyond its usage the credit covers (0 units when none)."""


class Items(NamedTuple):
    """The quota items of a batch, one array entry per item (all int64 unless said otherwise).

    Attributes:
        request: the position of the item's request in the batch.
        index: the item's index within its request; ``session.lua`` grants in this order.
        credit_micros: credit for this item's grant as read: available + what applying the item gives back first
            (its old hold and committed cost) − the cumulative cost of the usage reported now; earlier items of the
            same request take theirs from it.
        back_micros: what applying the item gives back first: its old hold and its committed cost.
        usage_cost_micros: the cumulative cost of the item's usage including what is reported now.
        top_cost_micros: what granting all that is asked costs beyond ``usage_cost_micros`` (the ladder's top).
        requested: units asked for (0: none).
        ladder_ok: (bool) the ladder of grant candidates could be rated whole.
        usage_ok: (bool) the usage could be rated; an item whose usage failed keeps its old hold and takes nothing.
        exact_wanted: (bool) the exact grant is wanted whatever the credit (authorizations answer with it).
    """

    request: np.ndarray
    index: np.ndarray
    credit_micros: np.ndarray
    back_micros: np.ndarray
    usage_cost_micros: np.ndarray
    top_cost_micros: np.ndarray
    requested: np.ndarray
    ladder_ok: np.ndarray
    usage_ok: np.ndarray
    exact_wanted: np.ndarray


def allocate(items: Items, search: ExactSearch) -> tuple[np.ndarray, np.ndarray]:
    """The exact grant ``(units, cost_micros)`` of every item that needs one (zeros elsewhere), item index by item
    index, each request's credit reduced by what its earlier items take as ``session.lua`` will apply them."""
    credit = items.credit_micros.copy()
    units = np.zeros(len(credit), dtype=np.int64)
    cost = np.zeros(len(credit), dtype=np.int64)
    taken: dict[int, int] = defaultdict(int)  # by request position
    indices = sorted(set(items.index.tolist()))
    for index in indices:
        now = np.flatnonzero(items.index == index)
        credit[now] -= [taken[request] for request in items.request[now].tolist()]
        wanted = (items.top_cost_micros[now] > credit[now]) | items.exact_wanted[now] | ~items.ladder_ok[now]
        short = now[(items.requested[now] > 0) & wanted]
        if len(short):
            units[short], cost[short] = search(short, credit[short])
        if index != indices[-1]:  # a later item is left to take from (single-item requests stop here)
            for item in now.tolist():
                if items.usage_ok[item]:
                    taken[int(items.request[item])] += _takes(items, item, credit, cost)
    return units, cost


def _takes(items: Items, item: int, credit: np.ndarray, exact_cost: np.ndarray) -> int:
    """What applying ``item`` takes from its request's credit: its usage, less what it gives back, plus the hold of
    the grant the script will make (the ladder's top when it fits, else the exact grant)."""
    hold = 0
    if items.requested[item] > 0:
        fits = items.top_cost_micros[item] <= credit[item] and items.ladder_ok[item]
        hold = int(items.top_cost_micros[item]) if fits else int(exact_cost[item])
    return int(items.usage_cost_micros[item]) + hold - int(items.back_micros[item])

"""The credit allocation among a request's quota items (``occ.core.allocation``), with a linear price for the search.

A unit costs 10 micro-units in these cases, so the exact search is ``units = min(requested, credit // 10)``.
"""

from __future__ import annotations

import numpy as np

from occ.core.allocation import Items, allocate

PRICE = 10


def items(**columns) -> Items:
    n = len(columns["request"])
    defaults = {"index": [0] * n, "back_micros": [0] * n, "usage_cost_micros": [0] * n, "ladder_ok": [True] * n,
                "usage_ok": [True] * n, "exact_wanted": [False] * n}  # fmt: skip
    merged = {**defaults, **columns}
    return Items(**{name: np.array(merged[name], dtype=bool if name.endswith(("_ok", "_wanted")) else np.int64)
                    for name in Items._fields})  # fmt: skip


def linear_search(requested: list[int], seen: list):
    def search(chosen: np.ndarray, credit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append((chosen.tolist(), credit.tolist()))
        units = np.minimum(np.array(requested)[chosen], np.maximum(credit, 0) // PRICE)
        return units, units * PRICE

    return search


def test_an_item_the_credit_covers_whole_needs_no_search():
    seen: list = []
    batch = items(request=[0], credit_micros=[1000], top_cost_micros=[600], requested=[60])
    units, cost = allocate(batch, linear_search([60], seen))
    assert seen == [] and units.tolist() == [0] and cost.tolist() == [0]


def test_the_second_item_gets_what_the_first_leaves():
    # Item 0 fits (its top, 600, is held); item 1 asks 60 units (600) from the 400 left: the exact grant is 40.
    seen: list = []
    batch = items(request=[0, 0], index=[0, 1], credit_micros=[1000, 1000], top_cost_micros=[600, 600],
                  requested=[60, 60])  # fmt: skip
    units, cost = allocate(batch, linear_search([60, 60], seen))
    assert seen == [([1], [400])]
    assert units.tolist() == [0, 40] and cost.tolist() == [0, 400]


def test_what_an_item_gives_back_and_debits_moves_the_next_items_credit():
    # Item 0 debits 300 of usage, gives back a hold of 100 and holds its top of 200: it takes 300 + 200 − 100 = 400.
    seen: list = []
    batch = items(request=[0, 0], index=[0, 1], credit_micros=[700, 700], back_micros=[100, 0],
                  usage_cost_micros=[300, 0], top_cost_micros=[200, 500], requested=[20, 50])  # fmt: skip
    allocate(batch, linear_search([20, 50], seen))
    assert seen == [([1], [300])]


def test_requests_do_not_share_credit_and_authorizations_are_always_searched():
    seen: list = []
    batch = items(request=[0, 1, 1], index=[0, 0, 1], credit_micros=[5000, 100, 100], top_cost_micros=[50, 50, 50],
                  requested=[5, 5, 5], exact_wanted=[True, False, False])  # fmt: skip
    units, _ = allocate(batch, linear_search([5, 5, 5], seen))
    # The authorization is searched although its ladder fits; request 1's second item has 100 − 50 = 50 left.
    assert seen == [([0], [5000])]
    assert units.tolist() == [5, 0, 0]


def test_an_item_whose_usage_failed_takes_nothing_and_one_without_a_ladder_is_searched():
    seen: list = []
    batch = items(request=[0, 0], index=[0, 1], credit_micros=[100, 100], usage_cost_micros=[90, 0],
                  top_cost_micros=[10, 30], requested=[1, 3], usage_ok=[False, True],
                  ladder_ok=[True, False])  # fmt: skip
    units, cost = allocate(batch, linear_search([1, 3], seen))
    assert seen == [([1], [100])]
    assert units.tolist() == [0, 3] and cost.tolist() == [0, 30]

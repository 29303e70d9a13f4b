"""The one error table (``occ.core.errors``): every error class has exactly one row, and the gRPC edge maps by it."""

from __future__ import annotations

import grpc
import pytest

from occ.api.errors import grpc_status
from occ.core import errors
from occ.core.errors import ERRORS, CurrencyChange, InvalidRequest, NoTariff, NotFound, OccError, rule_of


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    return found | {sub for child in found for sub in _all_subclasses(child)}


def test_every_error_class_has_exactly_one_row():
    classes = {cls for cls in _all_subclasses(OccError) if cls.__module__ == errors.__name__}
    assert classes == {rule.error for rule in ERRORS.values()}
    assert all(code == rule.error.code for code, rule in ERRORS.items())


@pytest.mark.parametrize("rule", list(ERRORS.values()), ids=list(ERRORS))
def test_every_row_names_a_real_grpc_status(rule):
    assert grpc.StatusCode[rule.grpc_status].name == rule.grpc_status


@pytest.mark.parametrize(
    ("error", "status", "retriable", "text"),
    [
        (InvalidRequest("quotas[0].used_units", "must be 0 to 10"), grpc.StatusCode.INVALID_ARGUMENT, False,
         "quotas[0].used_units: must be 0 to 10"),
        (NotFound("id", "no account 'bob'"), grpc.StatusCode.NOT_FOUND, False, "id: no account 'bob'"),
        (NoTariff("no tariff is loaded"), grpc.StatusCode.FAILED_PRECONDITION, True, "no tariff is loaded"),
        (CurrencyChange("the tariff is in USD"), grpc.StatusCode.FAILED_PRECONDITION, False, "the tariff is in USD"),
    ],
)  # fmt: skip
def test_an_error_maps_by_its_row_and_names_its_field(error, status, retriable, text):
    assert grpc_status(error) is status
    assert rule_of(error).retriable is retriable
    assert str(error) == text


def test_an_error_outside_the_table_has_no_status():
    assert grpc_status(RuntimeError("Redis went away")) is None
    assert rule_of(ValueError("x")) is None

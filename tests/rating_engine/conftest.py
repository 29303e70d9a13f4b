"""Fixtures for the rating core: the shipped example tariff, and rating through both paths at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rating_engine import (
    Call,
    CallBatch,
    Rated,
    RatingFailed,
    Service,
    compile_tariff,
    load_tariff,
    rate_batch,
    rate_call,
)

EXAMPLE_TARIFF = Path(__file__).resolve().parents[2] / "examples" / "tariff"


def at(text: str) -> int:
    """Unix seconds of an ISO-8601 UTC time such as ``2026-01-05T09:00:00``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@pytest.fixture(scope="session")
def tariff():
    return load_tariff(EXAMPLE_TARIFF)


@pytest.fixture(scope="session")
def compiled(tariff):
    return compile_tariff(tariff)


@pytest.fixture(scope="session")
def rate(tariff, compiled):
    """Rate one call with the scalar oracle and the vectorised rater; they must agree; return the result.

    A failure is returned as the ``RatingFailed`` exception (with the scalar reason) after checking both paths failed
    the same way.
    """

    def rate_one(plan: str, service: Service, destination: str, start: int, usage: int) -> Rated | RatingFailed:
        call = Call(plan, service, destination, start, usage)
        batch = CallBatch.from_calls(compiled, [call])
        rated = rate_batch(compiled, batch)
        try:
            scalar = rate_call(tariff, call)
        except RatingFailed as failed:
            with pytest.raises(RatingFailed) as vector_failed:
                rated.result(0, batch)
            assert vector_failed.value.failure == failed.failure
            assert vector_failed.value.reason == failed.reason
            return failed
        assert rated.result(0, batch) == scalar
        return scalar

    return rate_one

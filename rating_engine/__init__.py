"""The rating core: tariffs in, exact prices out, one call or a million at a time.

Pure computation: this package imports nothing from ``occ`` or ``settlement`` and touches no Redis, gRPC or SQL.
Money is integer micro-units throughout (``money.py``).
"""

from rating_engine.call import Call, Failure, Rated, RatingFailed
from rating_engine.compile import CompiledTariff, compile_tariff
from rating_engine.load import TariffError, TariffIssue, load_tariff
from rating_engine.numbers import normalize_number
from rating_engine.quota import (
    Breakpoints,
    CallBreakpoints,
    affordable_units,
    breakpoints,
    call_affordable_units,
    call_breakpoints,
)
from rating_engine.rate import CallBatch, RatedBatch, rate_batch
from rating_engine.scalar import CallPricing, rate_call
from rating_engine.tariff import Service, Tariff

__all__ = [
    "Breakpoints",
    "Call",
    "CallBatch",
    "CallBreakpoints",
    "CallPricing",
    "CompiledTariff",
    "Failure",
    "Rated",
    "RatedBatch",
    "RatingFailed",
    "Service",
    "Tariff",
    "TariffError",
    "TariffIssue",
    "affordable_units",
    "breakpoints",
    "call_affordable_units",
    "call_breakpoints",
    "compile_tariff",
    "load_tariff",
    "normalize_number",
    "rate_batch",
    "rate_call",
]

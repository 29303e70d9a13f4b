"""``Money``: a column of exact amounts, held in Python as integer micro-units.

PostgreSQL keeps it as ``NUMERIC(20, 6)`` in major units (what finance reads: ``12.300834``). SQLite has no exact
decimal type (its NUMERIC affinity turns ``0.1`` into a binary float), so there the same column is an INTEGER count of
micro-units: exact, summable, and as fast as SQLite gets. Either way Python code reads and writes ``int`` micro-units,
and ``SUM(money_column)`` comes back as micro-units too (SQLAlchemy gives the sum the column's type).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MICROS = Decimal(1_000_000)


def to_numeric(micros: int) -> Decimal:
    """Micro-units as the NUMERIC(20, 6) value PostgreSQL stores (``300834`` → ``Decimal("0.300834")``)."""
    return Decimal(micros).scaleb(-6)


class Money(TypeDecorator[int]):
    """An amount: ``int`` micro-units in Python; NUMERIC(20, 6) on PostgreSQL, INTEGER micro-units on SQLite."""

    impl = Numeric(20, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, 6, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if type(value) is not int:
            raise TypeError(f"Money takes int micro-units, got {type(value).__name__}")
        return value if dialect.name == "sqlite" else to_numeric(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, int):
            return value
        micros = Decimal(value) * MICROS
        if micros != micros.to_integral_value():
            raise ValueError(f"amount {value} has more than 6 decimals")
        return int(micros)

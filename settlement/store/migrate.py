"""Versioned migrations (Alembic, scripts in ``migrations/versions``), run programmatically: no alembic.ini.

``occ db upgrade`` and every command that writes to the store call :func:`upgrade` first; it is a no-op on an
up-to-date store and safe to run from several processes (each migration runs in one transaction).
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
logging.getLogger("alembic").setLevel(logging.WARNING)  # callers report what changed, once


def _config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head() -> str:
    """The newest migration's revision id."""
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current(engine: Engine) -> str:
    """The store's revision id ("" for an empty store)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() or ""


def upgrade(engine: Engine, revision: str = "head") -> tuple[str, str]:
    """Migrate the store to ``revision``; returns (revision before, revision after)."""
    before = current(engine)
    command.upgrade(_config(engine), revision)
    return before, current(engine)

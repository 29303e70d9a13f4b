"""The operator console ``occ serve`` runs beside itself (setting ``console_listen``, 127.0.0.1:8080 by default;
empty or ``occ serve --no-console``: none).

It is a child process, ``occ console``, with the server's settings in its environment (``OCC_<SETTING>``: never on
its command line, which every local user can read), stopped with the server, and sent SIGTERM by the kernel if the
server dies without stopping it (as the settlement worker is: :mod:`occ.settle_process`). If it dies, the server
goes on charging and logs the exit status.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from occ.settings import ENV_PREFIX, Settings
from occ.store.process import with_parent_death_signal
from settlement.store.database import default_url, open_store
from settlement.store.migrate import upgrade
from settlement.workers import WorkerProcess

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 10.0


def settings_environment(settings: Settings) -> dict[str, str]:
    """``OCC_<SETTING>`` for every setting, so that the child's ``Settings.load`` gets exactly the server's."""
    env = {}
    for name, value in msgspec.structs.asdict(settings).items():
        text = str(value).lower() if isinstance(value, bool) else str(value) if isinstance(value, Path) else value
        env[f"{ENV_PREFIX}{name.upper()}"] = str(text)
    return env


def start_console(settings: Settings) -> Callable[[], None]:
    """Start ``occ console`` for ``settings`` (whose ``console_listen`` is set); returns the function that stops it.

    The settlement store is migrated here first, so that the console and the settlement worker, both started now,
    find it ready and never race to create it."""
    engine = open_store(settings.db_url or default_url(settings.data_dir))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    command = [sys.executable, "-m", "occ", "console"]
    env = {name: value for name, value in os.environ.items() if name != "OCC_CONFIG"}
    env.update(settings_environment(settings))
    worker = WorkerProcess(with_parent_death_signal(command), env=env, stop_timeout_s=STOP_TIMEOUT_S,
                           name="operator console").start()  # fmt: skip
    pid = worker.process.pid  # type: ignore[union-attr]  (started)
    log.info("operator console started", extra={"pid": pid, "url": settings.console_url})
    return worker.stop

"""The settlement worker ``occ serve`` runs beside itself (setting ``settle``, on by default).

It is a child process, ``occ settle``, on the server's Redis and settlement store, so that draining never takes CPU
time from the gRPC event loop. It is stopped (SIGTERM: the batch in hand is finished) before the embedded Redis,
and it gets the same SIGTERM from the kernel if ``occ serve`` dies without stopping it (``kill -9``): the worker
never outlives its server, as the embedded Redis does not (the same mechanism:
:func:`occ.store.process.with_parent_death_signal`), so a restarted server never runs beside an orphan. Its Redis
URL (with the embedded Redis's password, or the configured credentials and TLS files) and its database URL reach it
through its environment, never its command line, which every local user can read.
If it dies, the server goes on charging and logs the exit status: the streams keep every entry until a settlement
worker acknowledges it, so nothing is lost, only late.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable

from sqlalchemy import make_url

from occ.settings import Settings
from occ.store.client import full_url
from occ.store.process import with_parent_death_signal
from settlement.store.database import default_url
from settlement.workers import WorkerProcess

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 15.0


def consumer_name(settings: Settings) -> str:
    """The worker's name in the consumer group: the same for every run of a server on this host and port, so a
    restarted server's worker reads at once what a killed one held (instead of after ``--claim-idle-s``), and a
    recovery can name it: ``occ settle --once --consumer <host>-serve-<port>``."""
    return f"{socket.gethostname()}-serve-{settings.port}"


def start_settlement(settings: Settings, *, metrics_port: int = 0) -> Callable[[], None]:
    """Start ``occ settle`` for ``settings`` (whose ``redis_url`` is resolved), serving its ``/metrics`` (the
    settlement lag) on ``metrics_port`` when given; returns the function that stops it."""
    db_url = settings.db_url or default_url(settings.data_dir)
    consumer = consumer_name(settings)
    command = [sys.executable, "-m", "occ", "settle", "--quiet", "--consumer", consumer]
    if metrics_port:
        command += ["--metrics-port", str(metrics_port)]
    env = {
        **os.environ,
        # In the environment, not on the command line (which every local user can read): both may hold a password.
        "OCC_REDIS_URL": full_url(settings),
        "OCC_DB_URL": db_url,
        "OCC_SHARDS": str(settings.shards),
        "OCC_REDIS_CLUSTER": str(settings.redis_cluster).lower(),
        "OCC_LOG_LEVEL": settings.log_level,
        "OCC_LOG_JSON": str(settings.log_json).lower(),
    }
    worker = WorkerProcess(with_parent_death_signal(command), env=env, stop_timeout_s=STOP_TIMEOUT_S).start()
    pid = worker.process.pid  # type: ignore[union-attr]  (started)
    shown = make_url(db_url).render_as_string(hide_password=True)
    log.info("settlement worker started", extra={"pid": pid, "db_url": shown, "consumer": consumer})
    return worker.stop

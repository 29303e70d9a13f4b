"""The settlement worker ``occ serve`` runs beside itself (setting ``settle``, on by default).

It is a child process, ``occ settle``, on the server's Redis and settlement store, so that draining never takes CPU
time from the gRPC event loop. It is stopped (SIGTERM: the batch in hand is finished) before the embedded Redis.
If it dies, the server goes on charging and logs the exit status: the streams keep every entry until a settlement
worker acknowledges it, so nothing is lost, only late.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from occ.settings import Settings
from settlement.store.database import default_url
from settlement.workers import WorkerProcess

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 15.0


def start_settlement(settings: Settings) -> Callable[[], None]:
    """Start ``occ settle`` for ``settings`` (whose ``redis_url`` is resolved); returns the function that stops it."""
    db_url = settings.db_url or default_url(settings.data_dir)
    command = [sys.executable, "-m", "occ", "settle", "--quiet", "--redis-url", settings.redis_url, "--db-url", db_url]
    env = {
        **os.environ,
        "OCC_SHARDS": str(settings.shards),
        "OCC_REDIS_CLUSTER": str(settings.redis_cluster).lower(),
        "OCC_LOG_LEVEL": settings.log_level,
        "OCC_LOG_JSON": str(settings.log_json).lower(),
    }
    worker = WorkerProcess(command, env=env, stop_timeout_s=STOP_TIMEOUT_S).start()
    log.info("settlement worker started", extra={"pid": worker.process.pid, "db_url": db_url})  # type: ignore[union-attr]
    return worker.stop

"""How ``occ serve`` and the ``occ`` CLIs behave for an operator when things go wrong (real processes, loopback).

Each case was found by an adversarial review and failed before its fix; each test's docstring gives the scenario.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc
from served import Served, clean_environment

from occ.cli import main
from occ.store.embedded import EmbeddedRedis
from occ.store.process import RedisProcess, free_port

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
OCC = str(Path(sys.executable).with_name("occ"))
UNUSED_REDIS = "redis://127.0.0.1:1/0"  # the fake apps never connect; it keeps the embedded Redis out of the way

APPS = '''
from fake_app import EmptyApp


class CloseFailingApp(EmptyApp):
    """Stops with an error, as when closing the Redis pool or the batcher fails."""

    async def close(self) -> None:
        raise RuntimeError("close failed (on purpose)")

'''

RUN_WITH_APP = textwrap.dedent(
    """
    import sys
    from occ.server import run
    from occ.settings import Settings
    import review_apps, fake_app
    port, metrics_port, data_dir, workers, app = sys.argv[1:6]
    module = review_apps if hasattr(review_apps, app) else fake_app
    settings = Settings.load(None, port=int(port), metrics_port=int(metrics_port), data_dir=data_dir,
                             workers=int(workers), grace_s=3.0, redis_url=sys.argv[6])
    sys.exit(run(settings, app_factory=getattr(module, app)))
    """
)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start server processes (``occ serve …`` or a fake app); every one is killed after the test."""
    (tmp_path / "review_apps.py").write_text(APPS)
    env = clean_environment(HERE, tmp_path)
    started: list[Served] = []

    def start(*args: str, app: str | None = None) -> Served:
        """``occ serve ARGS``; with ``app``, ARGS are port, metrics port, data dir, workers (Redis: unused)."""
        argv = [sys.executable, "-c", RUN_WITH_APP, *args, app, UNUSED_REDIS] if app else [OCC, "serve", *args]
        started.append(Served(argv, tmp_path / f"serve-{len(started)}.log", env))
        return started[-1]

    yield start
    for served in started:
        served.kill()


def health_check(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3).status


def metrics_page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


# --- occ serve: the process model -------------------------------------------------------------------------------------


def test_a_second_server_on_the_same_port_is_refused(serve, tmp_path):
    """SO_REUSEPORT is set even with one worker, so a second, unrelated ``occ serve`` (other data dir, so another
    embedded Redis with other accounts) binds the same port without complaint and the kernel splits new connections
    between the two: an account created through one is NOT_FOUND on about half of the later connections."""
    port = free_port()
    first = serve("--port", str(port), "--metrics-port", "0", "--data-dir", str(tmp_path / "a"))
    first.listening()
    second = serve("--port", str(port), "--metrics-port", "0", "--data-dir", str(tmp_path / "b"))
    second.wait_for("exit or listening", lambda: second.process.poll() is not None or second.messages("listening"))
    assert second.process.poll() is not None, "a second occ serve is listening on the port of a running one"
    assert second.process.wait(10) == 1


def test_a_failed_second_start_leaves_the_running_servers_metrics_alone(serve, tmp_path):
    """``prepare_multiprocess_dir`` deletes every ``*.db`` under ``<data_dir>/metrics`` before anything else is
    checked. A second ``occ serve --workers 2`` on the same data dir (the default ``./data``, with ``--redis-url``)
    fails on the taken metrics port, but only after deleting the live mmap files of the running server: its
    workers keep writing to unlinked files and its ``/metrics`` loses every worker metric for good."""
    port, metrics_port, data = free_port(), free_port(), str(tmp_path / "data")
    running = serve(str(port), str(metrics_port), data, "2", app="EmptyApp")
    running.listening(2)
    for _ in range(3):
        health_check(port)
    assert 'occ_grpc_calls_total{code="OK",method="Check"} 3.0' in metrics_page(metrics_port)
    second = serve(str(port), str(metrics_port), data, "2", app="EmptyApp")
    assert second.process.wait(20) == 1
    for _ in range(2):
        health_check(port)
    assert 'occ_grpc_calls_total{code="OK",method="Check"} 5.0' in metrics_page(metrics_port)
    assert running.stop() == 0


def test_a_taken_metrics_port_is_named_in_the_error(serve, tmp_path):
    """``cannot start: [Errno 98] Address already in use`` does not say which address: gRPC, metrics or Redis."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        served = serve("--port", str(free_port()), "--metrics-port", str(metrics_port), "--data-dir",
                       str(tmp_path / "data"), "--redis-url", UNUSED_REDIS)  # fmt: skip
        assert served.process.wait(20) == 1
    (error,) = [record for record in served.records() if record["level"] == "ERROR"]
    assert str(metrics_port) in error["msg"], error["msg"]


def test_a_worker_that_fails_while_stopping_makes_the_exit_status_1(serve, tmp_path):
    """``serve_worker`` returns 1 when the worker fails, but a ``multiprocessing.Process`` ignores its target's
    return value: the worker's exit code is 0, so the parent reports a clean stop (0) — and a worker that failed at
    start-up is logged with ``status: 0``. With one worker the same failure gives 1."""
    port = free_port()
    served = serve(str(port), "0", str(tmp_path / "data"), "2", app="CloseFailingApp")
    served.listening(2)
    status = served.stop()
    assert len(served.messages("worker failed")) == 2
    assert status == 1


def test_an_unusable_data_dir_is_an_error_not_a_traceback(serve, tmp_path):
    """``run`` creates the data dir outside its ``try``: a data dir that cannot be made (under a file, or without
    permission) ends in a raw Python traceback on stderr, not a ``cannot start`` log line (and not JSON)."""
    (tmp_path / "file").write_text("")
    served = serve("--port", str(free_port()), "--metrics-port", "0", "--data-dir", str(tmp_path / "file" / "data"))
    assert served.process.wait(20) == 1
    assert "Traceback" not in served.text(), served.text()
    assert [record["msg"] for record in served.records() if record["level"] == "ERROR"]


def test_every_log_line_is_json_when_the_grpc_port_is_taken(serve, tmp_path):
    """With ``log_json`` on (the default) gRPC core still writes its own ``E1122 … add_port.cc] … Address already in
    use`` line to stderr, and the JSON error only says ``Failed to bind … set GRPC_VERBOSITY=debug``."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = serve(str(port), "0", str(tmp_path / "data"), "1", app="EmptyApp")
        assert served.process.wait(20) == 1
    lines = [line for line in served.text().splitlines() if line.strip()]
    not_json = [line for line in lines if not line.startswith("{")]
    assert not not_json, not_json


def test_a_stale_pidfile_naming_another_directorys_redis_does_not_block_a_start(tmp_path, redis_server: RedisProcess):
    """``_refuse_if_owned`` only checks that the pid in ``redis.pid`` is *a* redis-server, not one on this
    directory: after a crash left the pidfile, a reused pid that now belongs to any other redis-server (the system
    one, another instance's) makes the start fail with "still running on <this dir>"."""
    directory = tmp_path / "data" / "redis"
    directory.mkdir(parents=True)
    (directory / "redis.pid").write_text(f"{redis_server.process.pid}\n")  # a redis-server, but in another directory
    embedded = EmbeddedRedis(tmp_path / "data")
    try:
        embedded.start()
    finally:
        embedded.stop()


# --- the command line ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["account", "topup", "alice", "99999999999999999999", "--ledger", "1"],
        ["account", "create", "alice", "--plan", "retail", "--credit-limit", "99999999999999999999"],
    ],
)
def test_an_amount_beyond_int64_is_a_usage_error_not_a_traceback(args):
    """``Amount`` accepts any number of digits; building the protobuf request then raises ``ValueError: Value out of
    range`` outside the gRPC error handling: a traceback and exit status 1."""
    result = CliRunner().invoke(main, [*args, "--server", "127.0.0.1:1"])
    assert not isinstance(result.exception, ValueError), result.exception
    assert result.exit_code == 2


def test_an_amount_in_non_ascii_digits_is_refused():
    """``parse_micros`` matches ``\\d``, which takes any Unicode digit: ``occ account topup alice ١٢`` credits 12.00."""
    result = CliRunner().invoke(main, ["account", "topup", "alice", "١٢", "--ledger", "1", "--server", "127.0.0.1:1"])
    assert result.exit_code == 2 and "Invalid value for 'AMOUNT'" in result.output, result.output


def test_occ_rate_into_an_unwritable_directory_is_an_error_not_a_traceback(tmp_path):
    """``-o`` in a directory that exists but cannot take files (no permission, read-only, /proc): the temporary
    file's ``open`` raises outside any handler, so the user gets a traceback."""
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text("plan,service,called,start,usage\nretail,voice,+442079460000,2026-01-05T09:00:00Z,61\n")
    result = CliRunner().invoke(
        main, ["rate", "--tariff", str(REPO / "examples" / "tariff"), str(cdrs), "-o", "/proc/occ-review-rated.csv"]
    )
    assert not isinstance(result.exception, OSError), repr(result.exception)
    assert result.exit_code == 1


def test_occ_serve_settles_into_a_sqlite_file_in_its_data_dir(serve, tmp_path):
    """The embedded defaults: a private Redis and a settlement worker writing <data_dir>/occ.sqlite3."""
    port, data = free_port(), tmp_path / "data"
    served = serve("--port", str(port), "--metrics-port", "0", "--data-dir", str(data), "--settle",
                   "--tariff", str(REPO / "examples" / "tariff"))  # fmt: skip
    served.listening()
    server = ["--server", f"127.0.0.1:{port}"]
    for args in (["create", "acme", "--plan", "retail", *server], ["topup", "acme", "12.5", "--ledger", "400000009",
                                                                    *server]):  # fmt: skip
        assert CliRunner().invoke(main, ["account", *args]).exit_code == 0
    store = data / "occ.sqlite3"
    served.wait_for("the top-up settled", lambda: store.exists() and _ledger_total(store) == 12_500_000)
    assert served.stop() == 0
    assert "settlement worker started" in served.text()


def _ledger_total(path: Path) -> int | None:
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as connection:
        try:
            return connection.execute("SELECT SUM(amount) FROM ledger").fetchone()[0]
        except sqlite3.OperationalError:  # not migrated yet
            return None

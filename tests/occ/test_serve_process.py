"""``occ serve`` as a real process: workers, embedded Redis, health, reflection, /metrics, clean exit on SIGTERM."""

from __future__ import annotations

import socket
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from served import Served, clean_environment

from occ.cli import main
from occ.server import _redacted
from occ.store.process import free_port

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SERVING = health_pb2.HealthCheckResponse.SERVING
RUN_WITH_APP = (  # argv: port, metrics port, data dir, workers, app class in fake_app
    "import sys; from occ.server import run; from occ.settings import Settings; import fake_app; "
    "sys.exit(run(Settings.load(None, port=int(sys.argv[1]), metrics_port=int(sys.argv[2]), data_dir=sys.argv[3], "
    "workers=int(sys.argv[4]), grace_s=1.0), app_factory=getattr(fake_app, sys.argv[5])))"
)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    env = clean_environment(HERE)

    def start(args: list[str], port: int, metrics_port: int) -> Served:
        log_path = tmp_path / f"serve-{len(started)}.log"
        started.append(Served(args, log_path, env, port=port, metrics_port=metrics_port))
        return started[-1]

    yield start
    for served in started:
        served.kill()


def health_status(port: int, service: str = "") -> int | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            return health_pb2_grpc.HealthStub(channel).Check(request, timeout=2).status
        except grpc.RpcError:
            return None


def listed_services(port: int) -> set[str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="*")
        answers = stub.ServerReflectionInfo(iter([request]), timeout=5)
        return {service.name for answer in answers for service in answer.list_services_response.service}


def metrics_page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def embedded_port(served: Served) -> int:
    (started,) = served.messages("embedded redis-server started")
    return int(started["url"].rsplit(":", 1)[1].split("/")[0])


def test_two_workers_share_the_port_and_the_metrics_and_stop_cleanly_on_sigterm(serve, tmp_path):
    port, metrics_port = free_port(), free_port()
    args = [sys.executable, "-c", RUN_WITH_APP, str(port), str(metrics_port), str(tmp_path / "data"), "2", "EmptyApp"]
    served = serve(args, port, metrics_port)
    served.wait_for("two workers listening", lambda: len(served.messages("listening")) == 2)
    assert {line["worker"] for line in served.messages("listening")} == {0, 1}
    assert health_status(port) == SERVING
    reflection = {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
    assert listed_services(port) == {"grpc.health.v1.Health", *reflection}
    for _ in range(9):
        assert health_status(port) == SERVING
    page = metrics_page(metrics_port)
    assert 'occ_grpc_calls_total{code="OK",method="Check"} 10.0' in page  # summed over both workers
    assert "occ_open_sessions 0.0" in page
    redis_port = embedded_port(served)
    assert port_open(redis_port)
    assert served.stop() == 0
    assert not port_open(port) and not port_open(metrics_port) and not port_open(redis_port)
    assert len(served.messages("stopping")) == 2
    assert (tmp_path / "data" / "redis" / "appendonlydir").is_dir()
    assert list((tmp_path / "data" / "metrics").glob("*.db"))


def test_a_worker_that_dies_stops_the_server_with_status_1(serve, tmp_path):
    port, metrics_port = free_port(), free_port()
    args = [sys.executable, "-c", RUN_WITH_APP, str(port), str(metrics_port), str(tmp_path / "data"), "2", "FailingApp"]
    served = serve(args, port, metrics_port)
    assert served.process.wait(30) == 1
    assert served.messages("worker failed") and served.messages("worker exited unexpectedly; stopping the others")
    assert not port_open(embedded_port(served))


def test_occ_serve_runs_the_real_app(serve, tmp_path):
    port, metrics_port, admin_port = free_port(), free_port(), free_port()
    occ = str(Path(sys.executable).with_name("occ"))
    args = [occ, "serve", "--port", str(port), "--metrics-port", str(metrics_port), "--data-dir",
            str(tmp_path / "data"), "--tariff", str(REPO / "examples" / "tariff"),
            "--admin-listen", f"127.0.0.1:{admin_port}"]  # fmt: skip
    served = serve(args, port, metrics_port)
    served.wait_for("listening", lambda: bool(served.messages("listening")))
    (announced,) = [line for line in served.records() if line["msg"].startswith("occ serve: gRPC on")]
    assert announced["address"] == f"127.0.0.1:{port}" and announced["redis_embedded"] is True
    assert announced["metrics_url"] == f"http://127.0.0.1:{metrics_port}/metrics"
    assert announced["admin_address"].startswith(f"127.0.0.1:{admin_port} ")
    assert health_status(port, "occ.v1.Charging") == SERVING
    assert health_status(admin_port, "occ.v1.Admin") == SERVING
    assert health_status(port, "occ.v1.Admin") is None  # Admin is not on the Charging port
    assert {"occ.v1.Charging", "grpc.health.v1.Health"} <= listed_services(port)
    assert "occ.v1.Admin" not in listed_services(port)
    assert "occ.v1.Admin" in listed_services(admin_port)
    page = metrics_page(metrics_port)
    assert 'occ_grpc_calls_total{code="OK",method="Check"} 2.0' in page
    # The loop-lag watch has been measuring since the worker started (every 5 ms): its histogram has samples.
    (lag_count,) = [line for line in page.splitlines() if line.startswith("occ_event_loop_lag_seconds_count")]
    assert float(lag_count.split()[-1]) > 0
    assert served.stop() == 0
    assert not port_open(port)


def test_bad_settings_are_a_usage_error():
    result = CliRunner().invoke(main, ["serve", "--workers", "0"], env={"OCC_PORT": "1"})
    assert result.exit_code == 2
    assert "workers must be 1–1024, got 0 (from override workers)" in result.output
    result = CliRunner().invoke(main, ["serve"], env={"OCC_PORT": "http"})
    assert result.exit_code == 2 and "environment variable OCC_PORT: 'http' is not valid" in result.output


def test_logged_redis_urls_hide_passwords():
    assert _redacted("redis://:secret@10.0.0.1:6379/0") == "redis://:***@10.0.0.1:6379/0"
    assert _redacted("redis://u:pw@h:1,redis://u:pw@h:2") == "redis://u:***@h:1,redis://u:***@h:2"
    assert _redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"

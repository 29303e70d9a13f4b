"""The container image's recipe: what the build context leaves out, the ports, and the health check it runs.

No image is built here (no Docker daemon in the test run): the ``.dockerignore`` patterns are matched the way Docker
matches them (a pattern excludes the paths it matches and everything under them; ``**`` spans directories), and the
HEALTHCHECK's own command line runs through the CLI against a real server.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_app import EmptyApp

from occ.api.server import GrpcServer
from occ.cli import main
from occ.settings import Settings
from occ.store.process import free_port

ROOT = Path(__file__).resolve().parents[2]


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")]


def _matches(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        rest = pattern[3:]
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[i:]), rest) for i in range(len(parts)))
    return fnmatch.fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")


def ignored(path: str) -> bool:
    """Whether the build context leaves ``path`` out: a pattern matches it or one of its parent directories."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(_matches(pattern, prefix) for pattern in ignore_patterns() for prefix in prefixes)


@pytest.mark.parametrize(
    "path",
    [
        "data/occ.sqlite3",  # issue 10: a build after serve.sh copied the SQLite books …
        "data/redis/appendonlydir/appendonly.aof.1.incr.aof",  # … and the live AOF into the image
        "data/metrics/worker-0.db",
        "occ.egg-info/PKG-INFO",
        ".hypothesis/examples/0a1b/2c3d",
        "tests/.hypothesis/constants/x",
        ".venv/bin/python",
        "occ/__pycache__/cli.cpython-311.pyc",
        "benchmarks/results/online.json",
    ],
)
def test_the_build_context_leaves_out_local_state(path):
    assert ignored(path)


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "README.md", "occ/cli/__init__.py", "occ/store/lua/session.lua", "proto/occ/v1/charging.proto",
     "scripts/gen_proto.sh", "examples/tariff/rates.csv", "settlement/export/erp.wsdl", "docs/events.md"],
)  # fmt: skip
def test_the_build_context_keeps_what_the_image_is_built_from(path):
    assert (ROOT / path).exists() and not ignored(path)


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_the_image_exposes_grpc_and_metrics():
    exposed = {port for line in re.findall(r"^EXPOSE (.+)$", dockerfile(), re.M) for port in line.split()}
    defaults = Settings()
    assert exposed == {str(defaults.port), str(defaults.metrics_port)}


def healthcheck_command() -> list[str]:
    [line] = re.findall(r"^HEALTHCHECK .*CMD (\[.*\])$", dockerfile(), re.M)
    return json.loads(line)  # the exec form: no shell needed in the image


async def test_the_healthcheck_passes_on_a_serving_server_and_fails_without_one():
    command = healthcheck_command()
    assert command[:2] == ["occ", "health"]
    settings = Settings(port=free_port(), grace_s=0.5, admin_listen="")  # (50052 may be another test's)
    env = {"OCC_SERVER": f"127.0.0.1:{settings.port}"}  # what the image's default OCC_PORT gives
    server = GrpcServer(settings, app_factory=EmptyApp)
    await server.start()
    try:
        healthy = await asyncio.to_thread(CliRunner().invoke, main, command[1:], env=env)
        assert (healthy.exit_code, healthy.stdout) == (0, f"127.0.0.1:{settings.port}: SERVING\n")
        unknown = await asyncio.to_thread(CliRunner().invoke, main, [*command[1:], "--service", "no.Such"], env=env)
        assert unknown.exit_code == 1 and unknown.stderr.startswith("error: NOT_FOUND")
    finally:
        await server.stop()
    gone = await asyncio.to_thread(CliRunner().invoke, main, command[1:], env=env)
    assert gone.exit_code == 1 and gone.stderr.startswith("error: UNAVAILABLE")

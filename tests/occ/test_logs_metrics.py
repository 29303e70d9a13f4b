"""JSON and text log lines; the tariff gauge; the multi-process metrics directory."""

from __future__ import annotations

import io
import json
import logging
import os
import urllib.request

import pytest
from prometheus_client import REGISTRY

from occ import logs, metrics
from occ.metrics_server import MULTIPROC_ENV, prepare_multiprocess_dir, release_multiprocess_dirs, serve_metrics
from occ.store.process import free_port


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    quieted = {name: logging.getLogger(name).level for name in ("grpc", "asyncio")}
    yield
    for name, level in quieted.items():
        logging.getLogger(name).setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def test_json_lines_carry_extras_fixed_fields_and_tracebacks(root_logging):
    stream = io.StringIO()
    logs.configure("info", True, fields={"worker": 3}, stream=stream)
    log = logging.getLogger("occ.test")
    log.debug("hidden")
    log.info("granted %d s", 30, extra={"session_id": "s-1", "path": logs})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "granted 30 s" and first["level"] == "INFO" and first["logger"] == "occ.test"
    assert first["worker"] == 3 and first["session_id"] == "s-1" and first["path"].startswith("<module")
    assert first["ts"].endswith("Z") and len(first["ts"]) == len("2026-01-05T09:00:00.123Z")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc"]


def test_text_lines(root_logging):
    stream = io.StringIO()
    logs.configure(logging.WARNING, False, stream=stream)
    logging.getLogger("occ.test").warning("slow", extra={"ms": 12})
    line = stream.getvalue().strip()
    assert line.endswith(" WARNING occ.test: slow ms=12")
    with pytest.raises(ValueError, match="LOUD"):
        logs.configure("LOUD", False, stream=stream)


def test_current_tariff_gauge_moves_to_the_new_hash():
    reloads = REGISTRY.get_sample_value("occ_tariff_reloads_total")
    metrics.set_current_tariff("test-aaa")
    metrics.set_current_tariff("test-aaa")
    metrics.set_current_tariff("test-bbb")
    assert REGISTRY.get_sample_value("occ_tariff_info", {"hash": "test-aaa"}) == 0
    assert REGISTRY.get_sample_value("occ_tariff_info", {"hash": "test-bbb"}) == 1
    assert REGISTRY.get_sample_value("occ_tariff_reloads_total") == reloads + 2


def test_multiprocess_dir_is_cleaned_and_exported(tmp_path, monkeypatch):
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    (tmp_path / "counter_123.db").write_bytes(b"old")
    directory = prepare_multiprocess_dir(tmp_path)
    try:
        assert os.environ[MULTIPROC_ENV] == str(tmp_path) and not list(tmp_path.glob("*.db"))
    finally:
        monkeypatch.delenv(MULTIPROC_ENV)
    port = free_port()
    stop = serve_metrics(port, directory)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200  # empty aggregate: no worker wrote anything
    finally:
        stop()
        release_multiprocess_dirs()

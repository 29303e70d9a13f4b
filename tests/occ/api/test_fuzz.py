"""Fuzzed gRPC input (hypothesis) against a real server (``GrpcServer`` with the production interceptors, on a real
redis-server): no answer is UNKNOWN or INTERNAL, no error details are longer than 512 characters, and a stream
answers every frame it took. Bounded in the default run (a few seconds); ``-m slow`` runs many more examples."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings

from benchmarks.faults.fuzz import Tally, stream_frames, unary_requests
from occ.api.client import sync_channel
from occ.api.server import GrpcServer
from occ.api.tokens import TOKENS_FILE, TokenFile
from occ.app import App
from occ.settings import Settings
from occ.store.process import free_port, start_redis_server

EXAMPLE_TARIFF = str(Path(__file__).resolve().parents[3] / "examples" / "tariff")
QUICK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    """A channel to a real server running in a thread of its own (hypothesis drives plain synchronous calls)."""
    data = tmp_path_factory.mktemp("fuzz")
    redis = start_redis_server(data / "redis")
    options = Settings.load(None, {}, port=free_port(), metrics_port=0, redis_url=redis.url, data_dir=data,
                            tariff_dir=EXAMPLE_TARIFF, demo_account="demo", grace_s=0.5,
                            admin_listen="", admin_on_charging_port=True)  # fmt: skip
    ready, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        server = GrpcServer(options, app_factory=App)
        try:
            await server.start()
        except BaseException as error:
            failure.append(error)
            raise
        finally:
            ready.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="fuzzed-server")
    thread.start()
    try:
        assert ready.wait(60) and not failure, failure
        token = TokenFile(data / TOKENS_FILE).create("tests", "admin")  # Admin is fuzzed as its most powerful caller
        with sync_channel(f"127.0.0.1:{options.port}", token=token) as open_channel:
            yield open_channel
    finally:
        stop.set()
        thread.join(30)
        redis.stop()


def fuzz_unary(channel: grpc.Channel, tally: Tally):
    @given(unary_requests())
    def check(request: tuple[str, bytes]) -> None:
        method, data = request
        assert tally.unary(channel, method, data), tally.violations[-1]

    return check


def fuzz_stream(channel: grpc.Channel, tally: Tally):
    @given(stream_frames())
    def check(frames: list[bytes]) -> None:
        assert tally.stream(channel, frames), tally.violations[-1]

    return check


def test_fuzzed_unary_requests_never_get_unknown_or_internal(channel):
    tally = Tally()
    QUICK(fuzz_unary(channel, tally))()
    assert tally.sent >= 100 and "INVALID_ARGUMENT" in tally.codes and not tally.violations


def test_fuzzed_streams_answer_every_frame_they_took(channel):
    tally = Tally()
    settings(QUICK, max_examples=40)(fuzz_stream(channel, tally))()
    assert tally.sent >= 40 and not tally.violations


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_many_more_fuzzed_requests(channel):
    tally = Tally()
    LONG(fuzz_unary(channel, tally))()
    settings(LONG, max_examples=1000)(fuzz_stream(channel, tally))()
    assert not tally.violations

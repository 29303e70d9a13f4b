"""One gRPC server in this process: health, reflection, the metrics interceptor, clean start-up failure."""

from __future__ import annotations

import socket

import grpc
import pytest
from fake_app import EmptyApp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from occ.api.server import HEALTH_SERVICE, GrpcServer, grpc_address
from occ.settings import Settings
from occ.store.process import free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"


async def list_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="*")]))
    async for answer in call:
        return {service.name for service in answer.list_services_response.service}
    raise AssertionError("no reflection answer")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_grpc_address_brackets_ipv6():
    assert grpc_address("127.0.0.1", 50051) == "127.0.0.1:50051"
    assert grpc_address("::1", 50051) == "[::1]:50051"
    assert grpc_address("[::1]", 1) == "[::1]:1"


async def test_health_reflection_and_call_metrics():
    apps: list[EmptyApp] = []

    def factory(settings: Settings) -> EmptyApp:
        apps.append(EmptyApp(settings))
        return apps[-1]

    settings = Settings(port=free_port(), grace_s=0.5)
    ok_before = sample("occ_grpc_calls_total", method="Check", code="OK")
    missing_before = sample("occ_grpc_calls_total", method="Check", code="NOT_FOUND")
    timed_before = sample("occ_request_duration_seconds_count", method="Check")
    server = GrpcServer(settings, app_factory=factory)
    await server.start()
    try:
        assert apps[0].started and server.services == []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert answer.status == SERVING
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            assert await list_services(channel) == {HEALTH_SERVICE, REFLECTION_SERVICE}
    finally:
        await server.stop()
    assert apps[0].closed
    assert sample("occ_grpc_calls_total", method="Check", code="OK") == ok_before + 1
    assert sample("occ_grpc_calls_total", method="Check", code="NOT_FOUND") == missing_before + 1
    assert sample("occ_request_duration_seconds_count", method="Check") == timed_before + 2


async def test_a_port_that_cannot_be_bound_fails_start_and_closes_the_app():
    apps: list[EmptyApp] = []

    def factory(settings: Settings) -> EmptyApp:
        apps.append(EmptyApp(settings))
        return apps[-1]

    with socket.socket() as holder:  # bound without SO_REUSEPORT: gRPC cannot share it
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        settings = Settings(port=holder.getsockname()[1], grace_s=0)
        server = GrpcServer(settings, app_factory=factory)
        with pytest.raises(OSError, match=rf"cannot listen on 127\.0\.0\.1:{settings.port}"):
            await server.start()
    assert apps[0].started and apps[0].closed

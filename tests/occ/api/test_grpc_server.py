"""One gRPC server in this process: health, reflection, the metrics interceptor, clean start-up failure."""

from __future__ import annotations

import socket

import grpc
import pytest
from fake_app import EmptyApp
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from occ.api.server import HEALTH_SERVICE, GrpcServer, grpc_address
from occ.settings import Settings
from occ.store.process import free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
REFLECTION_SERVICES = {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


async def list_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="*")]))
    async for answer in call:
        return {service.name for service in answer.list_services_response.service}
    raise AssertionError("no reflection answer")


async def ask_v1(channel: grpc.aio.Channel, request: reflection_pb2.ServerReflectionRequest):
    """One request to the v1 reflection service, as current grpcurl sends it. grpcio ships no v1 stubs; v1 is v1alpha
    field for field under another package, so the v1alpha messages make the same bytes on the wire."""
    call = channel.stream_stream(
        V1_METHOD,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )(iter([request]), timeout=5)
    async for answer in call:
        return answer
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

    settings = Settings(port=free_port(), grace_s=0.5, admin_listen="")  # no Admin listener on its fixed port
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
            assert await list_services(channel) == {HEALTH_SERVICE, *REFLECTION_SERVICES}
    finally:
        await server.stop()
    assert apps[0].closed
    assert sample("occ_grpc_calls_total", method="Check", code="OK") == ok_before + 1
    assert sample("occ_grpc_calls_total", method="Check", code="NOT_FOUND") == missing_before + 1
    assert sample("occ_request_duration_seconds_count", method="Check") == timed_before + 2


async def test_a_v1_reflection_client_lists_and_describes_the_services():
    """Issue 10: only v1alpha was served, and current grpcurl and tools ask for grpc.reflection.v1."""
    settings = Settings(port=free_port(), grace_s=0.5, admin_listen="")  # no Admin listener on its fixed port
    server = GrpcServer(settings, app_factory=EmptyApp)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}") as channel:
            listed = await ask_v1(channel, reflection_pb2.ServerReflectionRequest(list_services="*"))
            assert {s.name for s in listed.list_services_response.service} == {HEALTH_SERVICE, *REFLECTION_SERVICES}
            for symbol, package in [(HEALTH_SERVICE, "grpc.health.v1"),
                                    ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1")]:  # fmt: skip
                answer = await ask_v1(channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
                assert not answer.HasField("error_response"), answer.error_response.error_message
                [file] = answer.file_descriptor_response.file_descriptor_proto
                described = descriptor_pb2.FileDescriptorProto.FromString(file)
                assert described.package == package
                assert symbol.rsplit(".", 1)[1] in [service.name for service in described.service]
            v1 = described.service[0].method[0]
            assert v1.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
            assert v1.output_type == ".grpc.reflection.v1.ServerReflectionResponse"
    finally:
        await server.stop()


async def test_a_port_that_cannot_be_bound_fails_start_and_closes_the_app():
    apps: list[EmptyApp] = []

    def factory(settings: Settings) -> EmptyApp:
        apps.append(EmptyApp(settings))
        return apps[-1]

    with socket.socket() as holder:  # bound without SO_REUSEPORT: gRPC cannot share it
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        settings = Settings(port=holder.getsockname()[1], grace_s=0, admin_listen="")
        server = GrpcServer(settings, app_factory=factory)
        with pytest.raises(OSError, match=rf"cannot listen on 127\.0\.0\.1:{settings.port}"):
            await server.start()
    assert apps[0].started and apps[0].closed

"""gRPC server reflection under both names tools ask for: ``grpc.reflection.v1`` (current grpcurl, grpc_cli and
most tools) and ``grpc.reflection.v1alpha`` (older ones).

grpcio-reflection (1.85) implements v1alpha only (grpc/grpc#38576). The two protocols are the same messages, field
for field, under another package name, so one servicer answers both: v1 calls are decoded and encoded with the
v1alpha message classes (the bytes on the wire are identical). A v1 copy of the reflection file descriptor is added
to the descriptor pool, so that a v1 client can describe the v1 service like any other.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE = reflection.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
SERVICES = (V1_SERVICE, V1ALPHA_SERVICE)


def add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add ``grpc/reflection/v1/reflection.proto`` to ``pool``: v1alpha's file with the package renamed (once)."""
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    old, new = f".{reflection_pb2.DESCRIPTOR.package}.", f".{V1_PACKAGE}."
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.ClearField("options")  # java_package and the like name v1alpha; nothing here needs them
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):  # (assigning "" would mark a scalar field as a message reference)
                field.type_name = field.type_name.replace(old, new)
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new)
            method.output_type = method.output_type.replace(old, new)
    pool.Add(proto)


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection of ``service_names`` (and of both reflection services) under v1 and v1alpha."""
    pool = descriptor_pool.Default()
    add_v1_descriptor(pool)
    servicer = reflection.aio.ReflectionServicer([*service_names, *SERVICES], pool=pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1_method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": v1_method}),)
    )

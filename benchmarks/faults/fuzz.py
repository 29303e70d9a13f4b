"""Fuzzed gRPC input (hypothesis): what a broken or hostile client can send to OCC, and what OCC must answer.

Two kinds of request, for every unary method of ``occ.v1.Charging`` and ``occ.v1.Admin``:

- random bytes (often not a protobuf message at all, sometimes one by accident);
- valid messages with extreme fields: strings empty, at, past and far past their limits, with control characters
  and non-ASCII text; integers at the ends of their range; enum values no one defined; timestamps far away; nested
  messages and repeated items; ids that exist (``demo``) often enough to reach past validation.

``Charging.Stream`` gets sequences of such frames. The contract checked on every answer (:func:`allowed`): a status
in :data:`ALLOWED` (never UNKNOWN or INTERNAL), details short enough to quote (at most 512 characters), and on a
stream, an answer for every frame taken before the first undecodable one. Used by the tests (bounded, and longer
behind ``-m slow``) and by the fault suite (``python -m benchmarks.chaos``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from occ.v1 import admin_pb2, charging_pb2

ALLOWED = frozenset({"OK", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION",
                     "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED"})  # fmt: skip
MAX_DETAILS_CHARS = 512
MAX_MESSAGE_BYTES = 65536  # the server's default max_message_bytes: gRPC itself refuses a larger frame
CALL_TIMEOUT_S = 10.0
STREAM_METHOD = "/occ.v1.Charging/Stream"
REPEATED = ["4", "x", "é", "\x00", "🙂"]
SIZES = [3, 64, 257, 1025, 4097, 20_000]  # around the limits of occ.api.wire.MAX_CHARS, and far past them
KNOWN = ["demo", "fuzz-1", "+442079460000", "retail", "EUR", "S20", "examples/tariff"]
_INT_RANGES = {
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
}


def unary_methods() -> dict[str, type[Message]]:
    """``/occ.v1.Service/Method`` → its request class, for every unary method of both services."""
    methods: dict[str, type[Message]] = {}
    for module in (charging_pb2, admin_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if not method.client_streaming:
                    methods[f"/{service.full_name}/{method.name}"] = getattr(module, method.input_type.name)
    return methods


def _text() -> st.SearchStrategy[str]:
    utf8 = st.characters(codec="utf-8")
    return st.one_of(
        st.sampled_from(KNOWN),
        st.text(utf8, max_size=24),
        st.text(utf8, min_size=250, max_size=260),  # at the common limit of 256
        st.builds(lambda char, size: char * size, st.sampled_from(REPEATED), st.sampled_from(SIZES)),
    )


def _integer(kind: int) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES.get(kind, (-(2**31), 2**31 - 1))
    edges = [value for value in (low, high, 0, 1, -1, 2**31, 2**53, 10**12, 10**12 + 1) if low <= value <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high), st.integers(0, 100))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return _text()
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=300)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([value.number for value in field.enum_type.values]), st.integers(-3, 99))
    return _integer(field.type)


@st.composite
def messages(draw: st.DrawFn, cls: type[Message], depth: int = 0) -> Message:
    """A ``cls`` with each field set (or not) to a drawn extreme value; oneofs get one member or none."""
    message = cls()
    descriptor: Descriptor = cls.DESCRIPTOR
    for oneof in descriptor.oneofs:
        chosen = draw(st.sampled_from([None, *oneof.fields]))
        if chosen is not None:
            _set(draw, message, chosen, depth)
    for field in descriptor.fields:
        if field.containing_oneof is None and draw(st.booleans()):
            _set(draw, message, field, depth)
    return message


def _set(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        entries = draw(st.dictionaries(_scalar(key), _scalar(value), max_size=5))
        getattr(message, field.name).update(entries)  # (maps of scalars: LoadTariff's files)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        if depth > 3:
            return
        cls = GetMessageClass(field.message_type)
        if field.is_repeated:
            for item in draw(st.lists(messages(cls, depth + 1), max_size=20)):
                getattr(message, field.name).add().CopyFrom(item)
        else:
            getattr(message, field.name).CopyFrom(draw(messages(cls, depth + 1)))
    elif field.is_repeated:
        getattr(message, field.name).extend(draw(st.lists(_scalar(field), max_size=5)))
    else:
        setattr(message, field.name, draw(_scalar(field)))


def payloads(cls: type[Message]) -> st.SearchStrategy[bytes]:
    """Bytes to send as a ``cls`` request: random bytes, or a drawn message serialized."""
    return st.one_of(st.binary(max_size=300), messages(cls).map(lambda message: message.SerializeToString()))


def unary_requests() -> st.SearchStrategy[tuple[str, bytes]]:
    """(method, request bytes) over every unary method."""
    methods = unary_methods()
    return st.sampled_from(sorted(methods)).flatmap(lambda name: st.tuples(st.just(name), payloads(methods[name])))


def stream_frames() -> st.SearchStrategy[list[bytes]]:
    """A sequence of frames for ``Charging.Stream``: mostly requests, sometimes garbage."""
    return st.lists(payloads(charging_pb2.StreamRequest), min_size=1, max_size=12)


def _identity(data: bytes) -> bytes:
    return data


def allowed(code: grpc.StatusCode, details: str | None) -> bool:
    """What every answer must be: a status a client can act on, and details short enough to quote."""
    return code.name in ALLOWED and len(details or "") <= MAX_DETAILS_CHARS


def call_unary(channel: grpc.Channel, method: str, data: bytes) -> tuple[grpc.StatusCode, str]:
    """Send ``data`` as the request of ``method``; the status and details of the answer."""
    call = channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
    try:
        call(data, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def call_stream(channel: grpc.Channel, frames: list[bytes]) -> tuple[grpc.StatusCode, str, int, int]:
    """Send ``frames`` on Stream; (status, details, answers received, answers owed: frames before the first one that
    is not a ``StreamRequest``)."""
    owed = 0
    for frame in frames:
        if len(frame) > MAX_MESSAGE_BYTES:
            break
        try:
            charging_pb2.StreamRequest.FromString(frame)
        except DecodeError:
            break
        owed += 1
    call = channel.stream_stream(STREAM_METHOD, request_serializer=_identity, response_deserializer=_identity)
    answers = 0
    responses = call(iter(frames), timeout=CALL_TIMEOUT_S)
    try:
        for data in responses:
            answer = charging_pb2.StreamAnswer.FromString(data)
            answers += answer.WhichOneof("answer") not in ("abort", "reauth")  # pushes are not answers
    except grpc.RpcError as error:
        return error.code(), error.details() or "", answers, owed
    return responses.code(), responses.details() or "", answers, owed


class Tally:
    """What fuzzing saw: answers by status, and the contract's violations (each with an example)."""

    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()
        self.violations: list[str] = []

    def unary(self, channel: grpc.Channel, method: str, data: bytes) -> bool:
        code, details = call_unary(channel, method, data)
        self.codes[code.name] += 1
        if not allowed(code, details):
            self.violations.append(f"{method} {data[:40]!r}…: {code.name} {details[:200]!r}")
            return False
        return True

    def stream(self, channel: grpc.Channel, frames: list[bytes]) -> bool:
        code, details, answers, owed = call_stream(channel, frames)
        self.codes[f"Stream {code.name}"] += 1
        cut_by_grpc = code is grpc.StatusCode.RESOURCE_EXHAUSTED  # an oversize frame ends the call in gRPC core
        if not allowed(code, details) or (answers < owed and not cut_by_grpc):
            self.violations.append(f"Stream of {len(frames)} frames: {code.name} {details[:200]!r}, "
                                   f"{answers} answers for {owed} requests")  # fmt: skip
            return False
        return True

    @property
    def sent(self) -> int:
        return sum(self.codes.values())

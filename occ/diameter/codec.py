"""Framing and the message shapes on the wire: read one message off a stream, split its AVPs (python-diameter's
``Avp`` does the per-AVP codec and dictionary), and build answers and requests.

A stream whose framing cannot be trusted (truncated header, a version other than 1, a length that is not a
multiple of 4, shorter than a header or larger than ``MAX_MESSAGE_BYTES``) raises :class:`FramingError`: the peer
is closed, since no later byte can be found reliably. An AVP whose length runs past its message is
:class:`ProtocolError` 5014 (INVALID_AVP_LENGTH): the message itself was framed, so it is answered.
"""

from __future__ import annotations

import asyncio
import itertools
import struct

from diameter.message import Avp, Message, MessageHeader
from diameter.message.constants import (
    AVP_ERROR_MESSAGE,
    AVP_FAILED_AVP,
    AVP_ORIGIN_HOST,
    AVP_ORIGIN_REALM,
    AVP_RESULT_CODE,
    AVP_SESSION_ID,
)

from occ.diameter.protocol import ProtocolError, Result, is_protocol_error

HEADER_BYTES = 20
MAX_MESSAGE_BYTES = 65536
REQUEST, PROXIABLE, ERROR, RETRANSMIT = 0x80, 0x40, 0x20, 0x10
_VENDOR_FLAG = 0x80


class FramingError(Exception):
    """The stream cannot be read as Diameter messages any more."""


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One whole message (header included); ``asyncio.IncompleteReadError`` at end of stream."""
    head = await reader.readexactly(HEADER_BYTES)
    version, length = head[0], int.from_bytes(head[1:4], "big")
    if version != 1:
        raise FramingError(f"Diameter version {version}, not 1")
    if length < HEADER_BYTES or length % 4 or length > MAX_MESSAGE_BYTES:
        raise FramingError(f"message length {length} (must be a multiple of 4, 20–{MAX_MESSAGE_BYTES})")
    return head + await reader.readexactly(length - HEADER_BYTES)


def split_avps(payload: bytes) -> list[Avp]:
    """The AVPs of ``payload`` in order; :class:`ProtocolError` 5014 naming the first whose length is wrong."""
    avps, position = [], 0
    while position < len(payload):
        if len(payload) - position < 8:
            raise ProtocolError(Result.INVALID_AVP_LENGTH, f"{len(payload) - position} stray bytes after the AVPs")
        code, flags_length = struct.unpack_from(">II", payload, position)
        flags, length = flags_length >> 24, flags_length & 0xFFFFFF
        header = 12 if flags & _VENDOR_FLAG else 8
        padded = (length + 3) & ~3
        if length < header or position + length > len(payload):
            vendor = struct.unpack_from(">I", payload, position + 8)[0] if header == 12 and length >= 12 else 0
            failed = Avp(code, vendor, b"", flags & (REQUEST | PROXIABLE))  # M and P bits as sent; V from vendor
            raise ProtocolError(Result.INVALID_AVP_LENGTH, f"AVP {code} has length {length}", failed)
        avps.append(Avp.from_bytes(payload[position : position + padded]))
        position += padded
    return avps


def answer_to(request: Message, avps: list[Avp], *, result_code: int = Result.SUCCESS) -> bytes:
    """The answer to ``request`` (same command, application and identifiers; E bit for a 3xxx result)."""
    flags = request.header.command_flags & PROXIABLE
    if is_protocol_error(result_code):
        flags |= ERROR
    header = MessageHeader(1, 0, flags, request.header.command_code, request.header.application_id,
                           request.header.hop_by_hop_identifier, request.header.end_to_end_identifier)  # fmt: skip
    return Message(header, avps).as_bytes()


_identifiers = itertools.count(1)


def request_bytes(command: int, application: int, avps: list[Avp], *, proxiable: bool) -> tuple[int, bytes]:
    """(hop-by-hop identifier, bytes) of a new request OCC sends."""
    hop = next(_identifiers) & 0xFFFFFFFF
    flags = REQUEST | (PROXIABLE if proxiable else 0)
    header = MessageHeader(1, 0, flags, command, application, hop, hop)
    return hop, Message(header, avps).as_bytes()


def error_answer(
    request: Message, error: ProtocolError, origin_host: str, origin_realm: str, extra: list[Avp] = ()
) -> bytes:
    """A base-protocol error answer: Session-Id (when the request had a readable one), Result-Code, Origin-Host,
    Origin-Realm, ``extra``, Error-Message and Failed-AVP."""
    avps = [avp for avp in request.avps[:1] if avp.code == AVP_SESSION_ID and avp.vendor_id == 0]
    avps += [
        Avp.new(AVP_RESULT_CODE, value=error.result_code),
        Avp.new(AVP_ORIGIN_HOST, value=origin_host.encode()),
        Avp.new(AVP_ORIGIN_REALM, value=origin_realm.encode()),
        *extra,
        Avp.new(AVP_ERROR_MESSAGE, value=error.message[:200]),
    ]
    if error.failed is not None:
        avps.append(Avp.new(AVP_FAILED_AVP, value=[error.failed]))
    return answer_to(request, avps, result_code=error.result_code)

"""One Diameter peer connection on asyncio: the responder's side of the peer state machine (RFC 6733 §5.6).

    WAIT_CER ──CER from an allowed peer──▶ OPEN ──DPR / close / watchdog──▶ CLOSED
        └── CER refused (3010, 5010, a bad AVP), any other message, or no CER within Tw ──▶ CLOSED

In OPEN: DWR is answered (DWA), the peer gets a DWR after Tw of silence and is closed if it leaves that unanswered
for another Tw; DPR is answered (DPA) and the connection closed; application requests go to the gateway's handler,
each in a task of its own (answers may leave out of order), at most ``MAX_IN_FLIGHT`` at once: beyond that a
request is answered DIAMETER_TOO_BUSY at once (a flooding peer slows only itself). Answers to OCC's own requests
(DWR, ASR, RAR, DPR) are matched by hop-by-hop identifier. Every close is logged with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from diameter.message import Avp, Message, MessageHeader
from diameter.message import constants as c

from occ import metrics
from occ.diameter import codec
from occ.diameter.avps import Avps, value_of
from occ.diameter.protocol import (
    CREDIT_CONTROL_APP,
    DISCONNECT_REBOOTING,
    OCC_VENDOR_ID,
    PRODUCT_NAME,
    RELAY_APP,
    TGPP_VENDOR,
    Command,
    ProtocolError,
    Result,
    command_label,
)

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 256
"""Application requests of one peer being processed at once."""
WAIT_CER, OPEN, CLOSED = "wait_cer", "open", "closed"
_BASE = frozenset({Command.CAPABILITIES_EXCHANGE, Command.DEVICE_WATCHDOG, Command.DISCONNECT_PEER})


class Identity:
    """OCC's side of every exchange: Origin-Host, Origin-Realm and the Origin-State-Id of this process."""

    def __init__(self, host: str, realm: str) -> None:
        self.host, self.realm = host, realm
        self.state_id = int(time.time()) & 0xFFFFFFFF

    def origin(self) -> list[Avp]:
        return [Avp.new(c.AVP_ORIGIN_HOST, value=self.host.encode()),
                Avp.new(c.AVP_ORIGIN_REALM, value=self.realm.encode())]  # fmt: skip


Handler = Callable[["PeerConnection", Message], Awaitable[tuple[bytes, int]]]
"""An application request → (its answer, the answer's Result-Code)."""
Admission = Callable[[str, str], bool]
"""(Origin-Host, source address) → whether that peer may connect."""


class PeerConnection:
    """A connected peer. ``run()`` serves it until it closes; ``request()`` sends it a request of OCC's own.

    Attributes:
        host: the peer's Origin-Host (from its CER; "" before).
        realm: the peer's Origin-Realm.
        address: the source IP address of the connection.
        state: WAIT_CER, OPEN or CLOSED.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, identity: Identity, *,
                 admit: Admission, handle: Handler, watchdog_s: float,
                 on_state: Callable[[PeerConnection, str], None]) -> None:  # fmt: skip
        self._reader, self._writer, self._identity = reader, writer, identity
        self._admit, self._handle, self._watchdog_s, self._on_state = admit, handle, watchdog_s, on_state
        self.host = self.realm = ""
        self.address = writer.get_extra_info("peername")[0]
        self.state = WAIT_CER
        self._waiting: dict[int, asyncio.Future[Message | None]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._last_heard = time.monotonic()
        self._dwr_since: float | None = None

    async def run(self) -> None:
        """Read and answer until the peer leaves, is told to go, or breaks the protocol."""
        watchdog = asyncio.create_task(self._watchdog())
        reason = "peer closed the connection"
        try:
            while self.state != CLOSED:
                data = await codec.read_message(self._reader)
                self._last_heard = time.monotonic()
                ending = await self._received(data)
                if ending is not None:
                    reason = ending
                    break
        except asyncio.IncompleteReadError as error:
            reason = "peer closed the connection" if not error.partial else "truncated message, then end of stream"
        except codec.FramingError as error:
            reason = f"cannot frame the stream: {error}"
        except (ConnectionError, OSError) as error:
            reason = f"connection lost: {error}"
        except Exception as error:  # a bug: this peer is closed, the others are served on
            log.error("diameter peer failed", exc_info=error, extra={"peer": self.host or "?"})
            reason = f"internal error: {type(error).__name__}"
        finally:
            watchdog.cancel()
            self.close(reason)

    def close(self, reason: str) -> None:
        if self.state == CLOSED:
            return
        log.info("diameter peer closed", extra={"peer": self.host or "?", "address": self.address, "reason": reason})
        self._set_state(CLOSED)
        for future in self._waiting.values():
            if not future.done():
                future.cancel()
        self._waiting.clear()
        self._writer.close()

    async def request(
        self, command: Command, application: int, avps: list[Avp], timeout_s: float, *, session_id: str = ""
    ) -> Message | None:
        """Send a request of OCC's own (Session-Id first when given, then Origin-Host and -Realm, then ``avps``) and
        wait for its answer; None when none came in time, it did not decode, or the connection closed."""
        session = [Avp.new(c.AVP_SESSION_ID, value=session_id)] if session_id else []
        hop, data = codec.request_bytes(command, application, session + self._identity.origin() + avps,
                                        proxiable=command not in _BASE)  # fmt: skip
        future: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()
        self._waiting[hop] = future
        try:
            await self._send(data, command, "")
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            if self.state == CLOSED:  # the connection closed under the request (close() cancels what waits)
                return None
            raise
        finally:
            self._waiting.pop(hop, None)

    async def disconnect(self, timeout_s: float) -> None:
        """DPR (REBOOTING), the DPA awaited at most ``timeout_s``, then close."""
        if self.state == OPEN:
            with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                cause = Avp.new(c.AVP_DISCONNECT_CAUSE, value=DISCONNECT_REBOOTING)
                await self.request(Command.DISCONNECT_PEER, 0, [cause], timeout_s)
        self.close("OCC is stopping")

    async def _received(self, data: bytes) -> str | None:
        """Act on one message; a reason when the connection must close."""
        header = MessageHeader.from_bytes(data)
        if not header.is_request:
            return self._answer_arrived(header, data)
        metrics.count_diameter(command_label(header.command_code), "received", request=True)
        try:
            message = Message(header, codec.split_avps(data[codec.HEADER_BYTES :]))
        except ProtocolError as error:
            await self._refuse(Message(header, []), error)
            return None
        if header.command_code == Command.CAPABILITIES_EXCHANGE:
            return await self._capabilities(message)
        if self.state != OPEN:
            await self._refuse(message, ProtocolError(Result.UNKNOWN_PEER, "no capabilities exchange (CER) yet"))
            return f"request {header.command_code} before CER"
        if header.is_error:
            await self._refuse(message, ProtocolError(Result.INVALID_HDR_BITS, "a request with the E bit set"))
        elif header.command_code == Command.DEVICE_WATCHDOG:
            await self._answer(message, [*self._identity.origin(), self._state_id()])
        elif header.command_code == Command.DISCONNECT_PEER:
            await self._answer(message, self._identity.origin())
            return "peer sent DPR"
        elif header.command_code != Command.CREDIT_CONTROL:
            await self._refuse(message, ProtocolError(Result.COMMAND_UNSUPPORTED, f"command {header.command_code}"))
        elif header.application_id != CREDIT_CONTROL_APP:
            await self._refuse(message, ProtocolError(Result.APPLICATION_UNSUPPORTED,
                                                      f"application {header.application_id}"))  # fmt: skip
        elif len(self._tasks) >= MAX_IN_FLIGHT:
            await self._refuse(message, ProtocolError(Result.TOO_BUSY, f"more than {MAX_IN_FLIGHT} requests in flight"))
        else:
            task = asyncio.create_task(self._application(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return None

    async def _application(self, message: Message) -> None:
        answer, result_code = await self._handle(self, message)
        with contextlib.suppress(ConnectionError, OSError):
            await self._send(answer, message.header.command_code, str(result_code))

    async def _capabilities(self, message: Message) -> str | None:
        """Answer a CER: 2001 and OPEN, or a refusal and close."""
        avps = Avps(message.avps)
        try:
            host = avps.text(c.AVP_ORIGIN_HOST, required=True)
            realm = avps.text(c.AVP_ORIGIN_REALM, required=True)
            if not self._admit(host, self.address):
                raise ProtocolError(Result.UNKNOWN_PEER, f"peer {host[:64]!r} from {self.address} is not allowed")
            if not {CREDIT_CONTROL_APP, RELAY_APP} & _applications(avps):
                raise ProtocolError(Result.NO_COMMON_APPLICATION, "no Auth-Application-Id 4 (credit control)")
            vendors = _credit_control_vendors(avps)
        except ProtocolError as error:
            await self._refuse(message, error, self._capabilities_avps())
            return f"capabilities exchange refused ({error.result_code}: {error.message})"
        self.host, self.realm = host, realm
        await self._answer(message, [*self._identity.origin(), *self._capabilities_avps(vendors)])
        self._set_state(OPEN)
        log.info("diameter peer open", extra={"peer": host, "realm": realm, "address": self.address})
        return None

    def _capabilities_avps(self, vendors: tuple[int, ...] = ()) -> list[Avp]:
        """What a CEA says of OCC; ``vendors``: those the peer named credit control under (Vendor-Specific-
        Application-Id), answered in kind, since some clients (Kamailio's cdp) match applications with their vendor."""
        local = self._writer.get_extra_info("sockname")[0]
        vendor_apps = [
            Avp.new(c.AVP_VENDOR_SPECIFIC_APPLICATION_ID, value=[Avp.new(c.AVP_VENDOR_ID, value=vendor),
                                                                 Avp.new(c.AVP_AUTH_APPLICATION_ID, value=4)])
            for vendor in vendors
        ]  # fmt: skip
        return [
            Avp.new(c.AVP_HOST_IP_ADDRESS, value=local),
            Avp.new(c.AVP_VENDOR_ID, value=OCC_VENDOR_ID),
            Avp.new(c.AVP_PRODUCT_NAME, value=PRODUCT_NAME),
            self._state_id(),
            Avp.new(c.AVP_SUPPORTED_VENDOR_ID, value=TGPP_VENDOR),
            Avp.new(c.AVP_AUTH_APPLICATION_ID, value=CREDIT_CONTROL_APP),
            *vendor_apps,
        ]

    def _state_id(self) -> Avp:
        return Avp.new(c.AVP_ORIGIN_STATE_ID, value=self._identity.state_id)

    def _answer_arrived(self, header: MessageHeader, data: bytes) -> str | None:
        future = self._waiting.get(header.hop_by_hop_identifier)
        answer: Message | None = None
        result_code = ""
        with contextlib.suppress(ProtocolError):  # an answer that does not decode counts as none
            answer = Message(header, codec.split_avps(data[codec.HEADER_BYTES :]))
            code = Avps(answer.avps).get(c.AVP_RESULT_CODE, default=None)
            result_code = str(code) if code in Result._value2member_map_ else "other"  # a bounded label set
        metrics.count_diameter(command_label(header.command_code), "received", request=False, result_code=result_code)
        if future is None:
            return None if self.state == OPEN else "an answer before CER"
        future.set_result(answer)
        if header.command_code == Command.DEVICE_WATCHDOG:
            self._dwr_since = None
        return "peer answered DPR" if header.command_code == Command.DISCONNECT_PEER else None

    async def _answer(self, request: Message, avps: list[Avp]) -> None:
        avps = [Avp.new(c.AVP_RESULT_CODE, value=Result.SUCCESS), *avps]
        await self._send(codec.answer_to(request, avps), request.header.command_code, str(int(Result.SUCCESS)))

    async def _refuse(self, request: Message, error: ProtocolError, extra: list[Avp] = ()) -> None:
        where = {"peer": self.host or "?", "address": self.address, "command": request.header.command_code}
        log.info("diameter request refused", extra={**where, "result_code": error.result_code, "error": error.message})
        data = codec.error_answer(request, error, self._identity.host, self._identity.realm, list(extra))
        await self._send(data, request.header.command_code, str(error.result_code))

    async def _send(self, data: bytes, command: int, result_code: str) -> None:
        if self.state == CLOSED:
            return
        self._writer.write(data)
        metrics.count_diameter(command_label(command), "sent", request=not result_code, result_code=result_code)
        await self._writer.drain()

    async def _watchdog(self) -> None:
        """Close a peer that sends no CER within Tw; send DWR after Tw of silence, close if it stays unanswered."""
        tick = min(1.0, self._watchdog_s / 4)
        opened = time.monotonic()
        while self.state != CLOSED:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self.state == WAIT_CER and now - opened >= self._watchdog_s:
                self.close("no CER in time")
            elif self._dwr_since is not None and now - self._dwr_since >= self._watchdog_s:
                self.close("no DWA in time")
            elif self.state == OPEN and self._dwr_since is None and now - self._last_heard >= self._watchdog_s:
                self._dwr_since = now
                task = asyncio.create_task(self._send_dwr())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send_dwr(self) -> None:
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            await self.request(Command.DEVICE_WATCHDOG, 0, [self._state_id()], self._watchdog_s)

    def _set_state(self, state: str) -> None:
        self._on_state(self, state)
        self.state = state


def _credit_control_vendors(avps: Avps) -> tuple[int, ...]:
    """The Vendor-Ids of the CER's Vendor-Specific-Application-Ids that carry Auth-Application-Id 4."""
    vendors = []
    for _, group in avps.groups(c.AVP_VENDOR_SPECIFIC_APPLICATION_ID):
        if any(value_of(avp) == CREDIT_CONTROL_APP for avp in group.all(c.AVP_AUTH_APPLICATION_ID)):
            vendors.append(value_of(group.one(c.AVP_VENDOR_ID, required=True)))
    return tuple(dict.fromkeys(vendors))


def _applications(avps: Avps) -> set[int]:
    """The application ids a CER advertises (directly or in Vendor-Specific-Application-Id)."""
    found = {value_of(avp) for avp in avps.all(c.AVP_AUTH_APPLICATION_ID) + avps.all(c.AVP_ACCT_APPLICATION_ID)}
    for _, group in avps.groups(c.AVP_VENDOR_SPECIFIC_APPLICATION_ID):
        found |= {value_of(avp) for avp in group.all(c.AVP_AUTH_APPLICATION_ID)}
    return found

"""A Diameter Credit-Control client over asyncio for the load harness: one TCP connection, CER/CEA, requests matched
to answers by Hop-by-Hop Identifier (many in flight), DWR and server-initiated requests (ASR, RAR) answered, DPR/DPA.

The codec is python-diameter's (the same library the gateway uses for its dictionary); the peer handling is this
module's own, so many requests can share one connection without a thread per peer. Loopback only: ``connect``
refuses any other address.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import itertools
from collections.abc import Callable

from diameter.message import Message
from diameter.message.avp.grouped import (
    ImsInformation,
    MultipleServicesCreditControl,
    RequestedServiceUnit,
    ServiceInformation,
    SubscriptionId,
    UsedServiceUnit,
)
from diameter.message.commands import (
    CapabilitiesExchangeRequest,
    CreditControlRequest,
    DeviceWatchdogRequest,
    DisconnectPeerRequest,
)

HEADER_BYTES = 20
CREDIT_CONTROL_APPLICATION = 4
TGPP_VENDOR = 10415
SUCCESS = 2001
IMS_CONTEXT = "32260@3gpp.org"
END_USER_E164 = 0
INITIAL, UPDATE, TERMINATE, EVENT = 1, 2, 3, 4


class DiameterError(Exception):
    """The peer refused the connection (a CEA other than 2001) or the connection broke with requests in flight."""


def voice_ccr(
    origin_host: str, realm: str, session_id: str, request_type: int, number: int, subscriber: str, called: str, *,
    destination_realm: str, requested_s: int = 0, used_s: int | None = None, rating_group: int = 100,
) -> CreditControlRequest:  # fmt: skip
    """A CCR of an IMS voice session from ``origin_host`` in ``realm`` to the server's ``destination_realm`` (what a
    relay routes on): Subscription-Id E.164 ``subscriber``, Called-Party-Address ``tel:called``, one MSCC of
    ``rating_group`` asking ``requested_s`` seconds (none when 0) and reporting ``used_s`` (none when None)."""
    ccr = CreditControlRequest()
    ccr.header.application_id = CREDIT_CONTROL_APPLICATION  # the header's, not only the AVP: relays route on it
    ccr.session_id = session_id
    ccr.origin_host, ccr.origin_realm = origin_host.encode(), realm.encode()
    ccr.destination_realm = destination_realm.encode()
    ccr.auth_application_id = CREDIT_CONTROL_APPLICATION
    ccr.service_context_id = IMS_CONTEXT
    ccr.cc_request_type, ccr.cc_request_number = request_type, number
    ccr.event_timestamp = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    ccr.subscription_id = [SubscriptionId(subscription_id_type=END_USER_E164, subscription_id_data=subscriber)]
    mscc = MultipleServicesCreditControl(rating_group=rating_group)
    if requested_s:
        mscc.requested_service_unit = RequestedServiceUnit(cc_time=requested_s)
    if used_s is not None:
        mscc.used_service_unit = [UsedServiceUnit(cc_time=used_s)]
    ccr.multiple_services_credit_control = [mscc]
    ccr.service_information = ServiceInformation(
        ims_information=ImsInformation(node_functionality=6, role_of_node=0, called_party_address=f"tel:{called}")
    )
    return ccr


class DiameterClient:
    """One Diameter connection to a server on loopback, opened by ``connect`` (CER/CEA) and closed by ``close``.

    Attributes:
        origin_host, realm: this client's Origin-Host and Origin-Realm (the server must allow the Origin-Host).
        on_request: called with every request the server sends other than DWR (ASR, RAR …); the answer is 2001.
    """

    def __init__(self, origin_host: str, realm: str, on_request: Callable[[Message], None] | None = None) -> None:
        self.origin_host, self.realm, self.on_request = origin_host, realm, on_request
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, host: str, port: int, timeout_s: float = 10.0) -> Message:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"host: {host} is not a loopback address")
        self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        self._task = asyncio.create_task(self._read_loop(), name="diameter-client-reader")
        cer = CapabilitiesExchangeRequest()
        cer.origin_host, cer.origin_realm = self.origin_host.encode(), self.realm.encode()
        cer.host_ip_address = [host]
        cer.vendor_id, cer.product_name = 0, "occ-bench"
        cer.auth_application_id = [CREDIT_CONTROL_APPLICATION]
        cer.supported_vendor_id = [TGPP_VENDOR]
        cea = await asyncio.wait_for(self.request(cer), timeout_s)
        if cea.result_code != SUCCESS:
            raise DiameterError(f"CEA Result-Code {cea.result_code}")
        return cea

    async def request(self, message: Message) -> Message:
        """Send a request and wait for its answer (matched by Hop-by-Hop Identifier)."""
        assert self._writer is not None, "connect first"
        hop = next(self._ids)
        message.header.hop_by_hop_identifier = hop
        message.header.end_to_end_identifier = hop
        answer: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[hop] = answer
        self._writer.write(message.as_bytes())
        try:
            return await answer
        finally:
            self._pending.pop(hop, None)

    async def watchdog(self) -> Message:
        dwr = DeviceWatchdogRequest()
        dwr.origin_host, dwr.origin_realm = self.origin_host.encode(), self.realm.encode()
        return await self.request(dwr)

    async def close(self, timeout_s: float = 5.0) -> None:
        """DPR (cause REBOOTING), wait for the DPA, close the connection."""
        if self._writer is None:
            return
        try:
            if self._task is not None and not self._task.done():
                dpr = DisconnectPeerRequest()
                dpr.origin_host, dpr.origin_realm = self.origin_host.encode(), self.realm.encode()
                dpr.disconnect_cause = 0
                await asyncio.wait_for(self.request(dpr), timeout_s)
        finally:
            self._writer.close()
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._writer = None

    async def _read_loop(self) -> None:
        assert self._reader is not None and self._writer is not None
        try:
            while True:
                header = await self._reader.readexactly(HEADER_BYTES)
                length = int.from_bytes(header[1:4], "big")
                message = Message.from_bytes(header + await self._reader.readexactly(length - HEADER_BYTES))
                if message.header.is_request:
                    self._answer(message)
                elif (waiting := self._pending.get(message.header.hop_by_hop_identifier)) and not waiting.done():
                    waiting.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            broken = DiameterError(f"connection closed: {error}")
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(broken)

    def _answer(self, request: Message) -> None:
        assert self._writer is not None
        if not isinstance(request, DeviceWatchdogRequest) and self.on_request is not None:
            self.on_request(request)
        answer = request.to_answer()
        answer.result_code = SUCCESS
        answer.origin_host, answer.origin_realm = self.origin_host.encode(), self.realm.encode()
        if hasattr(request, "session_id") and request.session_id:
            answer.session_id = request.session_id
        self._writer.write(answer.as_bytes())

"""A Diameter client for the tests: python-diameter's own ``Node`` (its peer state machine, watchdog and codec, in
its threads), connected over loopback to an OCC gateway, and CCR builders.

Requests the gateway sends (ASR, RAR) are answered 2001 and kept in ``received`` for the test to look at.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import queue
import socket
import uuid
from collections.abc import Iterator

from diameter.message import Message
from diameter.message.avp.grouped import (
    ImsInformation,
    OriginatorReceivedAddress,
    RecipientAddress,
    RecipientInfo,
    RequestedServiceUnit,
    ServiceInformation,
    SmsInformation,
    UsedServiceUnit,
    VendorSpecificApplicationId,
)
from diameter.message.commands import CapabilitiesExchangeRequest, CreditControlRequest
from diameter.node import Node
from diameter.node.application import SimpleThreadingApplication
from online_app import MONDAY_PEAK

CLIENT_HOST, CLIENT_REALM = "client.test", "test.example"
OCC_HOST, OCC_REALM = "occ.localdomain", "localdomain"
VOICE, DATA, SMS = "32260@3gpp.org", "32251@3gpp.org", "32274@3gpp.org"
E164, IMSI, SIP_URI, NAI = 0, 1, 2, 3
INITIAL, UPDATE, TERMINATE, EVENT = 1, 2, 3, 4
_numbers = itertools.count(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def allowed(host: str = CLIENT_HOST) -> str:
    """The ``diameter_peers`` setting that lets ``host`` in from loopback."""
    return f"{host}=127.0.0.1"


class Peer:
    """A python-diameter node with one persistent connection to OCC's gateway on ``port``."""

    def __init__(self, port: int, host: str = CLIENT_HOST) -> None:
        self.host = host
        self.node = Node(host, CLIENT_REALM, vendor_ids=[10415])
        self.node.wakeup_interval = 1
        self.node.idle_timeout = 3600
        peer = self.node.add_peer(f"aaa://{OCC_HOST}:{port};transport=tcp", OCC_REALM, ip_addresses=["127.0.0.1"],
                                  is_persistent=True)  # fmt: skip
        self.app = SimpleThreadingApplication(4, is_auth_application=True, request_handler=self._handle)
        self.node.add_application(self.app, [peer], realms=[CLIENT_REALM])  # ASR, RAR name our realm
        self.received: queue.Queue[Message] = queue.Queue()

    def _handle(self, app: SimpleThreadingApplication, message: Message) -> Message:
        self.received.put(message)
        return app.generate_answer(message, result_code=2001)

    def send(self, request: Message, timeout_s: float = 10) -> Message:
        return self.app.send_request(request, timeout=timeout_s)

    def ccr(self, session: str, request_type: int, number: int, **options) -> CreditControlRequest:
        return credit_control_request(session, request_type, number, host=self.host, **options)


@contextlib.contextmanager
def connected(port: int, host: str = CLIENT_HOST) -> Iterator[Peer]:
    peer = Peer(port, host)
    peer.node.start()
    try:
        peer.app.wait_for_ready(timeout=10)
        yield peer
    finally:
        peer.node.stop(wait_timeout=5)


def credit_control_request(session: str, request_type: int, number: int, *, host: str = CLIENT_HOST,
                           context: str = VOICE, subscription: tuple[int, str] | None = None) -> CreditControlRequest:
    """A CCR from ``host`` at Monday 09:00 UTC (peak), without units."""  # fmt: skip
    request = CreditControlRequest()
    request.session_id = session
    request.origin_host = host.encode()
    request.origin_realm = CLIENT_REALM.encode()
    request.destination_realm = OCC_REALM.encode()
    request.service_context_id = context
    request.cc_request_type = request_type
    request.cc_request_number = number
    request.event_timestamp = datetime.datetime.fromtimestamp(MONDAY_PEAK, datetime.UTC)
    if subscription is not None:
        request.add_subscription_id(*subscription)
    return request


def session_id() -> str:
    return f"{CLIENT_HOST};{next(_numbers)};{uuid.uuid4().hex[:8]}"


def call_to(number: str, calling: str = "sip:+447700900001@ims.test") -> ServiceInformation:
    return ServiceInformation(ims_information=ImsInformation(called_party_address=number,
                                                             calling_party_address=[calling]))  # fmt: skip


def sms_to(number: str, sender: str = "+447700900001") -> ServiceInformation:
    recipient = RecipientInfo(recipient_address=[RecipientAddress(address_data=number)])
    originator = OriginatorReceivedAddress(address_data=sender)
    return ServiceInformation(sms_information=SmsInformation(recipient_info=[recipient],
                                                             originator_received_address=originator))  # fmt: skip


def ask(seconds: int | None = None, *, octets: int | None = None, messages: int | None = None) -> RequestedServiceUnit:
    return RequestedServiceUnit(cc_time=seconds, cc_total_octets=octets, cc_service_specific_units=messages)


def used(seconds: int | None = None, *, octets: int | None = None, messages: int | None = None) -> UsedServiceUnit:
    return UsedServiceUnit(cc_time=seconds, cc_total_octets=octets, cc_service_specific_units=messages)


class Wire:
    """A bare TCP connection to the gateway, for what a well-behaved node never sends (messages are still built and
    read with python-diameter's codec)."""

    def __init__(self, port: int, *, source: str = "127.0.0.1", timeout_s: float = 5) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s, source_address=(source, 0))
        self._hops = itertools.count(1)

    def close(self) -> None:
        self.sock.close()

    def send(self, message: Message | bytes) -> None:
        if isinstance(message, Message):
            if not message.header.hop_by_hop_identifier:
                message.header.hop_by_hop_identifier = message.header.end_to_end_identifier = next(self._hops)
            message = message.as_bytes()
        self.sock.sendall(message)

    def receive(self) -> Message | None:
        """The next message, or None when the gateway closed the connection."""
        head = self._exactly(20)
        if head is None:
            return None
        body = self._exactly(int.from_bytes(head[1:4], "big") - 20)
        return Message.from_bytes(head + (body or b""))

    def _exactly(self, count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def exchange(self, message: Message | bytes) -> Message | None:
        self.send(message)
        return self.receive()

    def capabilities(
        self, host: str = CLIENT_HOST, applications: tuple[int, ...] = (4,), *, vendor_specific: bool = False
    ) -> Message | None:
        """CER; ``vendor_specific``: credit control advertised as Kamailio's cdp does, inside
        Vendor-Specific-Application-Id with Vendor-Id 10415."""
        request = CapabilitiesExchangeRequest()
        request.origin_host = host.encode()
        request.origin_realm = CLIENT_REALM.encode()
        request.host_ip_address = ["127.0.0.1"]
        request.vendor_id = 0
        request.product_name = "tests"
        if vendor_specific:
            request.vendor_specific_application_id = [
                VendorSpecificApplicationId(vendor_id=10415, auth_application_id=app) for app in applications
            ]
        else:
            request.auth_application_id = list(applications)
        return self.exchange(request)

    @staticmethod
    def ccr(session: str, request_type: int, number: int, **options) -> CreditControlRequest:
        """A CCR with the header's application id, which a node would set."""
        request = credit_control_request(session, request_type, number, **options)
        request.header.application_id = 4
        return request

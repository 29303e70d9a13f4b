"""The Diameter gateway of one serving process: a TCP listener (beside gRPC, over the same batcher and engine), the
allowed peers, the Credit-Control requests, and the sessions' owners for server-initiated requests.

::

    gateway = Gateway(config, batcher, tariffs)
    await gateway.start()            # listening on config.host:config.port
    gateway.push_notice("abort", account, session_id)   # ASR to the peer that sent the session's INITIAL
    await gateway.close()            # DPR to every open peer, then stop

The owner of a session is the Origin-Host (and -Realm) of its CCR-INITIAL, kept in this process with the peer
connection the request came over (the client itself, or a relay agent in front of it; ``MAX_SESSIONS``, oldest
forgotten first). An abort or a re-auth for it becomes an ASR or RAR addressed to the owner (Destination-Host and
-Realm) and sent over that peer's connection here, if it has one (``occ.app`` hands every process each notice).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections import OrderedDict

import msgspec
from diameter.message import Avp, Message
from diameter.message import constants as c

from occ import metrics
from occ.core.batcher import Batcher
from occ.core.requests import Kind, Outcome, SessionOutcome, Work
from occ.core.tariffs import TariffHolder
from occ.diameter import cca, codec
from occ.diameter.avps import Avps
from occ.diameter.ccr import CreditRequest, read_ccr
from occ.diameter.peer import CLOSED, OPEN, Identity, PeerConnection
from occ.diameter.protocol import CREDIT_CONTROL_APP, REAUTH_AUTHORIZE_ONLY, Command, ProtocolError, Result
from occ.diameter_settings import Network

log = logging.getLogger(__name__)
MAX_SESSIONS = 250_000
NOTICE_TIMEOUT_S = 5.0
DISCONNECT_TIMEOUT_S = 1.0


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes:
    host, port: where to listen (port 0: any free port, see ``Gateway.port``).
    origin_host, origin_realm: OCC's Diameter identity.
    peers: allowed Origin-Host → the networks it may connect from.
    watchdog_s: Tw.
    validity_time_s: Validity-Time of every grant.
    reuse_port: share the port with the other serving processes (SO_REUSEPORT).
    """

    host: str
    port: int
    origin_host: str
    origin_realm: str
    peers: dict[str, tuple[Network, ...]]
    watchdog_s: float
    validity_time_s: int
    reuse_port: bool = False


class Owner(msgspec.Struct, frozen=True):
    """Attributes:
    account: the session's account.
    host, realm: Origin-Host and Origin-Realm of the session's CCR-INITIAL (where ASR and RAR are addressed).
    via: the Origin-Host of the peer connection it came over (where they are sent).
    """

    account: str
    host: str
    realm: str
    via: str


class Gateway:
    def __init__(self, config: GatewayConfig, batcher: Batcher[Work, Outcome], tariffs: TariffHolder) -> None:
        self.config, self.batcher, self.tariffs = config, batcher, tariffs
        self.identity = Identity(config.origin_host, config.origin_realm)
        self.peers: dict[str, PeerConnection] = {}  # Origin-Host → its open connection (the latest)
        self.sessions: OrderedDict[str, Owner] = OrderedDict()
        self._connections: set[PeerConnection] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.config.host, self.config.port,
                                                  reuse_port=self.config.reuse_port or None)  # fmt: skip
        if not self.config.peers:
            log.warning("diameter_peers is empty: every peer will be refused (DIAMETER_UNKNOWN_PEER)")
        log.info("diameter listening", extra={"address": f"{self.config.host}:{self.port}",
                 "origin_host": self.config.origin_host, "origin_realm": self.config.origin_realm,
                 "peers": sorted(self.config.peers)})  # fmt: skip

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(peer.disconnect(DISCONNECT_TIMEOUT_S) for peer in list(self._connections)))
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    def admits(self, host: str, address: str) -> bool:
        """An allowed Origin-Host connecting from one of its networks."""
        try:
            source = ipaddress.ip_address(address)
        except ValueError:
            return False
        if source.version == 6 and source.ipv4_mapped is not None:
            source = source.ipv4_mapped
        return any(source in network for network in self.config.peers.get(host, ()))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = PeerConnection(reader, writer, self.identity, admit=self.admits, handle=self._credit_control,
                              watchdog_s=self.config.watchdog_s, on_state=self._peer_state)  # fmt: skip
        metrics.DIAMETER_PEERS.labels(peer.state).inc()
        self._connections.add(peer)
        try:
            await peer.run()
        finally:
            self._connections.discard(peer)

    def _peer_state(self, peer: PeerConnection, state: str) -> None:
        """Keep the peers table and the ``occ_diameter_peers`` gauge in step with a connection's change of state."""
        metrics.DIAMETER_PEERS.labels(peer.state).dec()
        if state != CLOSED:
            metrics.DIAMETER_PEERS.labels(state).inc()
        if state == OPEN:
            self.peers[peer.host] = peer
        elif self.peers.get(peer.host) is peer:
            del self.peers[peer.host]

    async def _credit_control(self, peer: PeerConnection, message: Message) -> tuple[bytes, int]:
        """A CCR → (its CCA, the Result-Code); nothing is charged unless the request passed every check."""
        avps = Avps(message.avps)
        try:
            request = read_ccr(avps, country_code=self.tariffs.current.tariff.country_code if self.tariffs.loaded
                               else "", account_of_session=self._account_of_session)  # fmt: skip
        except ProtocolError as error:
            return codec.error_answer(message, error, *self._origin(), _echo(avps)), error.result_code
        except Exception as error:  # a bug in reading: answered and logged, never a silent drop
            log.error("cannot read a CCR", exc_info=error)
            failed = ProtocolError(Result.UNABLE_TO_COMPLY, "the request could not be read")
            return codec.error_answer(message, failed, *self._origin(), _echo(avps)), Result.UNABLE_TO_COMPLY
        try:
            outcome = await self.batcher.submit(request.work)
        except Exception as error:  # every CCR is answered: store outages, a missing tariff, bugs (logged)
            code = cca.error_code(error)
            return codec.answer_to(message, cca.refused(request, code, self._origin()), result_code=code), code
        self._follow(request, outcome, peer)
        answer = cca.credit_answer(request, outcome, self._origin(), self.config.validity_time_s)
        return codec.answer_to(message, answer, result_code=outcome.code), outcome.code

    def _origin(self) -> tuple[str, str]:
        return self.config.origin_host, self.config.origin_realm

    def _follow(self, request: CreditRequest, outcome: Outcome, peer: PeerConnection) -> None:
        """Record who owns a session that opened. An ended session is kept too (until ``MAX_SESSIONS`` newer ones
        push it out): a repeated TERMINATE without Subscription-Id still finds its account and its stored answer."""
        work = request.work
        if isinstance(outcome, SessionOutcome) and work.kind is Kind.START and outcome.code == Result.SUCCESS:
            owner = Owner(work.subscriber, request.origin_host, request.origin_realm, via=peer.host)
            self.sessions[work.session_id] = owner
            self.sessions.move_to_end(work.session_id)
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)

    def _account_of_session(self, session_id: str) -> str | None:
        owner = self.sessions.get(session_id)
        return None if owner is None else owner.account

    def push_notice(self, kind: str, account_id: str, session_id: str, reason: str = "") -> bool:
        """Send the session's owner an ASR (``abort``) or a RAR (``reauth``) if it is connected here; False if not."""
        owner = self.sessions.get(session_id)
        peer = None if owner is None or owner.account != account_id else self.peers.get(owner.via)
        if peer is None or peer.state != OPEN:
            return False
        task = asyncio.create_task(self._notify(peer, owner, kind, session_id, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _notify(self, peer: PeerConnection, owner: Owner, kind: str, session_id: str, reason: str) -> None:
        avps = [
            Avp.new(c.AVP_DESTINATION_REALM, value=owner.realm.encode()),
            Avp.new(c.AVP_DESTINATION_HOST, value=owner.host.encode()),
            Avp.new(c.AVP_AUTH_APPLICATION_ID, value=CREDIT_CONTROL_APP),
        ]
        if kind == "abort":
            command = Command.ABORT_SESSION
        else:
            command = Command.RE_AUTH
            avps.append(Avp.new(c.AVP_RE_AUTH_REQUEST_TYPE, value=REAUTH_AUTHORIZE_ONLY))
        with contextlib.suppress(ConnectionError, OSError):
            answer = await peer.request(command, CREDIT_CONTROL_APP, avps, NOTICE_TIMEOUT_S, session_id=session_id)
            result = Avps(answer.avps).get(c.AVP_RESULT_CODE) if answer is not None else None
            log.info("diameter notice answered", extra={"peer": owner.host, "via": peer.host, "session_id": session_id,
                     "command": command.name, "result_code": result, "reason": reason})  # fmt: skip


def _echo(avps: Avps) -> list[Avp]:
    """Auth-Application-Id, CC-Request-Type and CC-Request-Number of a refused CCR, where they were readable (an
    error CCA repeats them)."""
    echoed = [Avp.new(c.AVP_AUTH_APPLICATION_ID, value=CREDIT_CONTROL_APP)]
    for code in (c.AVP_CC_REQUEST_TYPE, c.AVP_CC_REQUEST_NUMBER):
        with contextlib.suppress(ProtocolError):
            value = avps.get(code)
            if isinstance(value, int):
                echoed.append(Avp.new(code, value=value))
    return echoed

"""Kamailio as a charging SIP proxy (ims_charging over cdp, OCC its Diameter peer) and SIPp as caller and callee.

Kamailio runs in the foreground (-DD -E) in its own process group with a private runtime dir; its config and cdp's
DiameterPeer file are rendered from ``kamailio/`` with ports chosen at run time. SIPp runs the scenarios of
``sipp/``: ``answer.xml`` (the callee: answers and waits for the BYE) and ``call.xml`` (one call held ``-d`` ms).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from diameter_peer import free_port
from peer_processes import PeerProcess, free_udp_port

HERE = Path(__file__).resolve().parent
ORIGIN_HOST = "kamailio.test"
REALM = "test"


def _modules_dir() -> str:
    found = glob.glob("/usr/lib/*/kamailio/modules/ims_charging.so") + glob.glob("/usr/lib/kamailio/modules/ims_*.so")
    assert found, "Kamailio's IMS modules are not installed: run scripts/setup.sh --with-diameter-peers"
    return str(Path(found[0]).parent) + "/"


@dataclass
class KamailioProxy:
    """Where everything listens: Kamailio's SIP port, the callee's, and OCC's Diameter port Kamailio connects to.

    Attributes:
        occ_port: OCC's Diameter listener (127.0.0.1).
        workdir: where the rendered configs, the runtime dir and the logs go.
        reserve_s: seconds asked for in the CCR-I (Ro_CCR's reservation units).
        interim_s: seconds asked for in each CCR-U; an update goes out ``timer_buffer_s`` before a grant runs out.
    """

    occ_port: int
    workdir: Path
    reserve_s: int = 30
    interim_s: int = 30
    timer_buffer_s: int = 8
    sip_port: int = field(default_factory=free_udp_port)
    answer_port: int = field(default_factory=free_udp_port)
    process: PeerProcess | None = None

    def render(self) -> Path:
        values = {
            "SIP_PORT": self.sip_port, "ANSWER_PORT": self.answer_port, "OCC_PORT": self.occ_port,
            "ACCEPT_PORT": free_port(), "MODULES": _modules_dir(), "ORIGIN_HOST": ORIGIN_HOST, "REALM": REALM,
            "DIAMETER_XML": self.workdir / "diameter.xml", "RESERVE_S": self.reserve_s, "INTERIM_S": self.interim_s,
            "TIMER_BUFFER_S": self.timer_buffer_s,
        }  # fmt: skip
        for name in ("kamailio.cfg", "diameter.xml"):
            text = (HERE / "kamailio" / name).read_text()
            for key, value in values.items():
                text = text.replace(f"@{key}@", str(value))
            (self.workdir / name).write_text(text)
        return self.workdir / "kamailio.cfg"

    def start(self) -> KamailioProxy:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.render()
        runtime = self.workdir / "run"
        runtime.mkdir(exist_ok=True)
        self.process = PeerProcess(
            "kamailio",
            ["kamailio", "-f", str(config), "-DD", "-E", "-m", "64", "-M", "8", "-Y", str(runtime)],
            self.workdir / "kamailio.log",
        )
        self.process.wait_for_text("Peer 127.0.0.1:", timeout_s=30)  # cdp's connect attempt to OCC
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def log(self) -> str:
        return self.process.text() if self.process else ""


def answering_party(proxy: KamailioProxy, calls: int) -> PeerProcess:
    """SIPp as the callee: answers ``calls`` calls relayed by the proxy, then exits."""
    return PeerProcess(
        "sipp callee",
        ["sipp", "-sf", str(HERE / "sipp" / "answer.xml"), "-i", "127.0.0.1", "-p", str(proxy.answer_port),
         "-m", str(calls), "-nostdin", "-trace_err", "-timeout", "120", "-timeout_error"],
        proxy.workdir / "sipp-callee.log", cwd=proxy.workdir,
    )  # fmt: skip


def place_calls(
    proxy: KamailioProxy, caller: str, called: str, *, calls: int, hold_ms: int, name: str, scenario: str = "call.xml"
) -> PeerProcess:
    """SIPp as the caller: ``calls`` calls one after another from ``caller`` to ``called`` through the proxy, each
    held ``hold_ms``; ``scenario`` ``refused.xml`` expects each to be refused with 402 instead."""
    return PeerProcess(
        f"sipp caller {name}",
        ["sipp", "-sf", str(HERE / "sipp" / scenario), "-key", "caller", caller, "-key", "called", called,
         f"127.0.0.1:{proxy.sip_port}", "-i", "127.0.0.1", "-p", str(free_udp_port()),
         "-m", str(calls), "-l", "1", "-d", str(hold_ms), "-nostdin", "-trace_err", "-trace_stat",
         "-timeout", "120", "-timeout_error"],
        proxy.workdir / f"sipp-{name}.log", cwd=proxy.workdir,
    )  # fmt: skip

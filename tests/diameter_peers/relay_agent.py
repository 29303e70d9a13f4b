"""freeDiameter's daemon (freeDiameterd) as a relay agent in front of OCC: it connects to OCC's gateway as a peer of
its own, accepts the client named in its white list (acl_wl, no TLS), and relays Credit-Control both ways.

The configuration is rendered from ``freediameter/relay.conf`` with ports chosen at run time; the TLS credentials
freeDiameter insists on loading are made by trustme in the test's directory (never used on the wire).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from diameter_peer import free_port
from peer_processes import PeerProcess

HERE = Path(__file__).resolve().parent
IDENTITY, REALM = "relay.test", "relay.example"


def _extensions_dir() -> str:
    found = glob.glob("/usr/lib/freeDiameter/acl_wl.fdx") + glob.glob("/usr/lib/*/freeDiameter/acl_wl.fdx")
    assert found, "freeDiameter's extensions are not installed: run scripts/setup.sh --with-diameter-peers"
    return str(Path(found[0]).parent)


@dataclass
class RelayAgent:
    """Attributes:
    occ_host, occ_port: OCC's Origin-Host and Diameter port on 127.0.0.1.
    clients: Origin-Hosts allowed to connect to the relay.
    workdir: configuration, credentials and log.
    port: where the relay listens (127.0.0.1).
    """

    occ_host: str
    occ_port: int
    clients: tuple[str, ...]
    workdir: Path
    port: int = field(default_factory=free_port)
    process: PeerProcess | None = None

    def start(self) -> RelayAgent:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.workdir / "ca.pem"))
        issued = ca.issue_cert(IDENTITY)
        issued.cert_chain_pems[0].write_to_path(str(self.workdir / "cert.pem"))
        issued.private_key_pem.write_to_path(str(self.workdir / "key.pem"))
        (self.workdir / "acl.conf").write_text("".join(f"ALLOW_IPSEC {host}\n" for host in self.clients))
        values = {
            "IDENTITY": IDENTITY, "REALM": REALM, "PORT": self.port, "OCC_HOST": self.occ_host,
            "OCC_PORT": self.occ_port, "CERT": self.workdir / "cert.pem", "KEY": self.workdir / "key.pem",
            "CA": self.workdir / "ca.pem", "ACL": self.workdir / "acl.conf", "EXTENSIONS": _extensions_dir(),
        }  # fmt: skip
        text = (HERE / "freediameter" / "relay.conf").read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", str(value))
        config = self.workdir / "relay.conf"
        config.write_text(text)
        self.process = PeerProcess("freeDiameterd", ["freeDiameterd", "-c", str(config), "-d"], self.workdir / "fd.log")
        self.process.wait_for_text(f"'STATE_OPEN'\t'{self.occ_host}'", timeout_s=30)  # its CER/CEA with OCC
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

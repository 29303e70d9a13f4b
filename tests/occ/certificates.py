"""Test certificates made with trustme in the test's own directory (never committed): a CA, the server's
certificate for 127.0.0.1 and localhost, and client certificates."""

from __future__ import annotations

from pathlib import Path

import trustme


class Pki:
    """A CA and files under ``directory``: ``ca.pem``, ``server.pem`` + ``server.key``, client pairs on demand."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA()
        self.ca_file = directory / f"{name}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def server(self, cert_file: Path | None = None, key_file: Path | None = None) -> tuple[Path, Path]:
        """A server certificate for 127.0.0.1 and localhost, written to (cert_file, key_file)."""
        cert_file = cert_file or self.directory / "server.pem"
        key_file = key_file or self.directory / "server.key"
        issued = self.ca.issue_cert("127.0.0.1", "localhost")
        issued.private_key_pem.write_to_path(str(key_file))
        cert_file.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        return cert_file, key_file

    def client(self, common_name: str, *dns_names: str) -> tuple[Path, Path]:
        """A client certificate with ``common_name`` (and DNS SANs), as (cert_file, key_file)."""
        issued = self.ca.issue_cert(*(dns_names or (f"{common_name}.clients.test",)), common_name=common_name)
        cert_file, key_file = self.directory / f"{common_name}.pem", self.directory / f"{common_name}.key"
        issued.private_key_pem.write_to_path(str(key_file))
        cert_file.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        return cert_file, key_file

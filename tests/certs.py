"""TLS certificates for tests, made on the spot with trustme (never committed): a CA, a server certificate for
127.0.0.1 and localhost, a client certificate, and a second CA that signed nothing of these (for "wrong CA" cases).

Key files are written with mode 0600: libpq refuses a client key that others can read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Certs:
    """PEM files in one directory.

    Attributes:
        ca: the CA that signed the server and client certificates.
        server_cert, server_key: for 127.0.0.1 and localhost.
        client_cert, client_key: for ``client_name`` (the certificate's common name).
        other_ca: a CA that signed none of them.
    """

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def make_certs(directory: Path, *, client_name: str = "occ") -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert(f"{client_name}@example.invalid", common_name=client_name)
    files = Certs(*(directory / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key",
                                                    "other-ca.pem")))  # fmt: skip
    ca.cert_pem.write_to_path(str(files.ca))
    other.cert_pem.write_to_path(str(files.other_ca))
    server.cert_chain_pems[0].write_to_path(str(files.server_cert))
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    for blob, path in ((server.private_key_pem, files.server_key), (client.private_key_pem, files.client_key)):
        blob.write_to_path(str(path))
        os.chmod(path, 0o600)
    return files


def redis_tls_args(certs: Certs, tls_port: int, *, require_client_cert: bool = True) -> tuple[str, ...]:
    """redis-server options for a TLS port beside the plain one (which the test harness uses to stop the server)."""
    return ("--tls-port", str(tls_port), "--tls-cert-file", str(certs.server_cert),
            "--tls-key-file", str(certs.server_key), "--tls-ca-cert-file", str(certs.ca),
            "--tls-auth-clients", "yes" if require_client_cert else "no")  # fmt: skip

"""TLS for the gRPC listeners: server credentials whose certificate files are read again when they change.

::

    credentials = listener_credentials(settings, client_auth="required")   # None: plaintext (no tls_cert_file)
    server.add_secure_port(address, credentials)

gRPC asks :meth:`CertificateFiles.fetch` for the configuration before each new handshake (grpc's
``dynamic_ssl_server_credentials``); it answers "unchanged" unless the files' contents changed since its last answer.
A changed set that does not load (a key that does not match its certificate, a file half written) is not taken:
handshakes go on with the last good configuration, one warning is logged per change, and the next change is tried
again. Connections already open keep the certificate they were made with.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
from pathlib import Path

import grpc

from occ.settings import Settings

log = logging.getLogger(__name__)


class CertificateError(OSError):
    """A certificate, key or CA file cannot be read or does not load; the message names the setting."""


class CertificateFiles:
    """The server certificate chain, its key and (for mutual TLS) the client CA, as files.

    Changes are found by content (a SHA-256 of the files read before each handshake: a few kB), so a file rewritten
    in place within one clock tick, or replaced by a rename, counts alike.

    Attributes:
        cert_file, key_file: the server's PEM certificate chain and private key.
        client_ca_file: PEM CA certificates for client certificates; None when clients present none.
    """

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> None:
        self.cert_file, self.key_file, self.client_ca_file = cert_file, key_file, client_ca_file
        self._lock = threading.Lock()
        self._served = ""  # digest of the files last handed to gRPC
        self._refused = ""  # digest of a changed set that did not load (warned about once)

    def _contents(self) -> dict[str, bytes]:
        files = [("tls_cert_file", self.cert_file), ("tls_key_file", self.key_file)]
        if self.client_ca_file is not None:
            files.append(("tls_client_ca_file", self.client_ca_file))
        contents = {}
        for setting, path in files:
            try:
                contents[setting] = path.read_bytes()
            except OSError as error:
                raise CertificateError(f"{setting} {path}: {error.strerror or error}") from None
        return contents

    @staticmethod
    def _digest(contents: dict[str, bytes]) -> str:
        return hashlib.sha256(b"\0".join(contents.values())).hexdigest()

    def load(self) -> grpc.ServerCertificateConfiguration:
        """Read and check the files (the key must match the certificate); raise :class:`CertificateError`."""
        with self._lock:
            contents = self._contents()
            configuration = self._configuration(contents)
            self._served, self._refused = self._digest(contents), ""
            return configuration

    def _configuration(self, contents: dict[str, bytes]) -> grpc.ServerCertificateConfiguration:
        try:  # the standard library checks the PEM and that the key belongs to the certificate
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError) as error:
            message = f"tls_cert_file {self.cert_file} with tls_key_file {self.key_file}: {error}"
            raise CertificateError(message) from None
        if self._contents() != contents:  # what ssl checked must be what gRPC gets
            raise CertificateError(f"tls_cert_file {self.cert_file}: the files changed while they were read")
        ca = contents.get("tls_client_ca_file")
        if ca is not None:
            try:
                ssl.create_default_context(cadata=ca.decode("ascii", errors="replace"))
            except (ssl.SSLError, ValueError) as error:
                message = f"tls_client_ca_file {self.client_ca_file}: no CA certificate in it ({error})"
                raise CertificateError(message) from None
        pair = (contents["tls_key_file"], contents["tls_cert_file"])
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=ca)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """For gRPC, before a handshake: the new configuration if the files changed and load, else None."""
        with self._lock:
            digest = "missing"
            try:
                contents = self._contents()
                digest = self._digest(contents)
                if digest in (self._served, self._refused):
                    return None
                configuration = self._configuration(contents)
            except CertificateError as error:
                if digest != self._refused:
                    log.warning("TLS files changed but do not load; keeping the previous certificate",
                                extra={"error": str(error)})  # fmt: skip
                self._refused = digest
                return None
            self._served, self._refused = digest, ""
        log.info("TLS certificate reloaded", extra={"cert_file": str(self.cert_file)})
        return configuration


def certificate_files(settings: Settings, client_auth: str) -> CertificateFiles:
    ca = Path(settings.tls_client_ca_file) if client_auth == "required" else None
    return CertificateFiles(Path(settings.tls_cert_file), Path(settings.tls_key_file), ca)


def listener_credentials(settings: Settings, *, client_auth: str) -> grpc.ServerCredentials | None:
    """TLS credentials for one listener (``client_auth``: ``none`` or ``required``), or None without TLS.

    Raises :class:`CertificateError` when the files do not load now.
    """
    if not settings.tls:
        return None
    files = certificate_files(settings, client_auth)
    return grpc.dynamic_ssl_server_credentials(
        files.load(), files.fetch, require_client_authentication=client_auth == "required"
    )


def check_files(settings: Settings) -> None:
    """Load every configured certificate file once (``occ serve`` does so before starting anything)."""
    if settings.tls:
        for mode in {settings.tls_client_auth, settings.admin_client_auth}:
            certificate_files(settings, mode).load()


def peer_identities(auth_context: dict[str, list[bytes]]) -> list[str]:
    """A verified client certificate's names, as gRPC reports them: DNS SANs first, then the common name."""
    names = [value.decode() for value in auth_context.get("x509_subject_alternative_name", [])]
    names += [value.decode() for value in auth_context.get("x509_common_name", [])]
    return list(dict.fromkeys(name for name in names if name))

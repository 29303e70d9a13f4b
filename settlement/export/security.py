"""Who may talk to the ERP middleware: OCC's credentials and certificates (:class:`ErpAuth`, the exporter's side)
and what ``occ erp-sim`` demands of a caller (:class:`SimSecurity`, the middleware's side).

OCC can prove itself three ways, alone or together, as the middleware requires:

- **HTTP basic**: ``username`` and ``password`` in the ``Authorization`` header (over https: the header is not
  encrypted by itself);
- **WS-Security UsernameToken** (``wsse``): the same credentials in the SOAP header, as zeep's ``UsernameToken``
  writes it, the password as text (``PasswordText``) or hashed with a nonce and a timestamp (``PasswordDigest``);
- **a client certificate** (``cert_file`` + ``key_file``) in the TLS handshake (https only).

``ca_file`` is the CA bundle OCC trusts for the middleware's own certificate (default: the system's). A middleware
refusing OCC's credentials answers HTTP 401 (basic) or a ``wsse:FailedAuthentication`` fault (UsernameToken); a
missing or unknown client certificate fails the TLS handshake.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
from typing import Literal

import msgspec
from lxml import etree

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_TEXT = "#PasswordText"
PASSWORD_DIGEST = "#PasswordDigest"


class ErpAuth(msgspec.Struct, frozen=True, kw_only=True):
    """How the exporter authenticates to the middleware and checks it (``occ export --erp-…`` or
    ``OCC_ERP_USERNAME`` …).

    Attributes:
        username: the account OCC uses at the middleware.
        password: its password (from ``OCC_ERP_PASSWORD`` rather than a flag others can see in ``ps``).
        wsse: send the credentials as a WS-Security UsernameToken, ``text`` or ``digest``, instead of HTTP basic.
        cert_file: PEM client certificate presented in the TLS handshake.
        key_file: its private key.
        ca_file: PEM bundle of the CA(s) that signed the middleware's certificate; empty: the system's.
    """

    username: str = ""
    password: str = ""
    wsse: Literal["", "text", "digest"] = ""
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""

    def __post_init__(self) -> None:
        if self.password and not self.username:
            raise ValueError("erp password: a password needs a username (--erp-username, OCC_ERP_USERNAME)")
        if self.wsse and not (self.username and self.password):
            raise ValueError("erp wsse: a UsernameToken needs --erp-username and --erp-password")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("erp cert: a client certificate (--erp-cert) and its key (--erp-key) go together")

    def check_url(self, url: str) -> None:
        """Raise ``ValueError`` when ``url`` cannot carry these settings (certificates need https)."""
        if (self.cert_file or self.ca_file) and not url.startswith("https://"):
            raise ValueError(f"erp cert/ca: certificates need an https:// ERP URL, got {url}")

    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify``: True (the system's CAs) or a context with ``ca_file`` and the client certificate."""
        if not (self.ca_file or self.cert_file):
            return True
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def basic(self) -> tuple[str, str] | None:
        """``(username, password)`` for HTTP basic, or None (no credentials, or they go in the SOAP header)."""
        return (self.username, self.password) if self.username and not self.wsse else None

    def username_token(self):  # -> zeep.wsse.username.UsernameToken | None
        """zeep's UsernameToken for the SOAP header, or None."""
        if not self.wsse:
            return None
        from zeep.wsse.username import UsernameToken

        return UsernameToken(self.username, self.password, use_digest=self.wsse == "digest")


class SimSecurity(msgspec.Struct, frozen=True, kw_only=True):
    """What ``occ erp-sim`` demands of callers of ``POST /soap``.

    Attributes:
        username, password: the only credentials it accepts.
        require_basic: refuse a request without them in HTTP basic (401).
        require_wsse: refuse a request without them in a WS-Security UsernameToken (a SOAP fault).
        cert_file, key_file: serve https with this certificate.
        client_ca_file: with https, require a client certificate signed by one of these CAs (the TLS handshake
            fails without one).
    """

    username: str = ""
    password: str = ""
    require_basic: bool = False
    require_wsse: bool = False
    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""

    def __post_init__(self) -> None:
        if (self.require_basic or self.require_wsse) and not (self.username and self.password):
            raise ValueError("erp-sim: requiring credentials needs --username and --password")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("erp-sim: --tls-cert and --tls-key go together")
        if self.client_ca_file and not self.cert_file:
            raise ValueError("erp-sim: --client-ca needs https (--tls-cert, --tls-key)")

    def server_context(self) -> ssl.SSLContext | None:
        if not self.cert_file:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            context.load_verify_locations(self.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def basic_ok(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the accepted credentials (always, when not required)."""
        if not self.require_basic:
            return True
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return _same(user, self.username) & _same(password, self.password)

    def wsse_ok(self, envelope: etree._Element) -> bool:
        """Whether the SOAP header holds a UsernameToken with the accepted credentials (always, when not required)."""
        if not self.require_wsse:
            return True
        token = envelope.find(f"{{*}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        user = token.findtext(f"{{{WSSE}}}Username", "")
        password = token.find(f"{{{WSSE}}}Password")
        if password is None or not _same(user, self.username):
            return False
        kind, sent = password.get("Type", PASSWORD_TEXT), (password.text or "").strip()
        if kind.endswith(PASSWORD_TEXT):
            return _same(sent, self.password)
        if kind.endswith(PASSWORD_DIGEST):
            nonce, created = token.findtext(f"{{{WSSE}}}Nonce", ""), token.findtext(f"{{{WSU}}}Created", "")
            try:
                raw_nonce = base64.b64decode(nonce, validate=True)
            except binascii.Error:
                return False
            digest = hashlib.sha1(raw_nonce + created.encode() + self.password.encode()).digest()
            return _same(sent, base64.b64encode(digest).decode())
        return False


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())

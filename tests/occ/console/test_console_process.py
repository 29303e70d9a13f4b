"""``occ serve`` starts the console beside itself (and stops it); ``occ console`` alone; the listener rules."""

from __future__ import annotations

import http.cookiejar
import re
import socket
import ssl
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from certs import make_certs
from click.testing import CliRunner
from served import Served, clean_environment

from occ.cli import main
from occ.settings import Settings, SettingsError
from occ.store.process import free_port

REPO = Path(__file__).resolve().parents[3]
OCC = str(Path(sys.executable).with_name("occ"))


class Visitor:
    """A browser of urllib: cookies kept, redirects followed, the page's CSRF token sent back."""

    def __init__(self, base: str, tls: ssl.SSLContext | None = None) -> None:
        self.base, self.cookies = base, http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.cookies)]
        if tls is not None:
            handlers.append(urllib.request.HTTPSHandler(context=tls))
        self.opener = urllib.request.build_opener(*handlers)
        self.csrf = ""

    def open(self, path: str, form: dict[str, str] | None = None) -> str:
        data = urllib.parse.urlencode({"csrf": self.csrf, **form}).encode() if form is not None else None
        with self.opener.open(self.base + path, data=data, timeout=10) as response:
            text = response.read().decode()
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        self.csrf = found.group(1) if found else self.csrf
        return text


@pytest.fixture
def served(tmp_path):
    started: list[Served] = []

    def start(args: list[str], **env: str) -> Served:
        started.append(Served(args, tmp_path / f"serve-{len(started)}.log", {**clean_environment(), **env}))
        return started[-1]

    yield start
    for server in started:
        server.kill()


def test_occ_serve_runs_the_console_beside_itself_and_stops_it(served, tmp_path):
    port, admin_port, console_port, data = free_port(), free_port(), free_port(), tmp_path / "data"
    server = served([OCC, "serve", "--port", str(port), "--metrics-port", "0", "--data-dir", str(data), "--settle",
                     "--tariff", str(REPO / "examples" / "tariff"), "--demo", "--admin-listen",
                     f"127.0.0.1:{admin_port}", "--console-listen", f"127.0.0.1:{console_port}"])  # fmt: skip
    server.listening()
    (announced,) = [r for r in server.records() if r["msg"].startswith("occ serve: gRPC on")]
    assert announced["console_url"] == f"http://127.0.0.1:{console_port}/"
    visitor = Visitor(f"http://127.0.0.1:{console_port}")
    server.wait_for("the console answering", lambda: _answers(visitor))
    page = visitor.open("/sign-in", {"token": (data / "admin-token").read_text().strip()})
    assert "<h1>Dashboard</h1>" in page
    server.wait_for("the settlement lag on the dashboard", lambda: "entries</dd>" in visitor.open("/dashboard/live"))
    assert "demo" in visitor.open("/accounts")
    assert server.stop() == 0
    assert not _answers(visitor)  # stopped with the server


def _answers(visitor: Visitor) -> bool:
    try:
        return "<h1>Sign in</h1>" in visitor.open("/sign-in")
    except OSError:
        return False


def test_no_console_turns_it_off():
    result = CliRunner().invoke(main, ["serve", "--no-console", "--port", "0"], env={"OCC_ADMIN_LISTEN": ""})
    assert result.exit_code == 2 and "port must be 1–65535" in result.output  # (settings refused before serving)
    assert Settings.load(None, {}, console_listen="").console_listen == ""


def test_a_console_on_a_non_loopback_address_needs_tls():
    with pytest.raises(SettingsError, match=re.escape("console_listen 192.0.2.1 is not a loopback address")):
        Settings.load(None, {}, console_listen="192.0.2.1:8080")
    result = CliRunner().invoke(main, ["console", "--listen", "192.0.2.1:8080"], env={})
    assert result.exit_code == 2 and "console_listen 192.0.2.1 is not a loopback address" in result.output
    assert Settings.load(None, {}).console_listen == "127.0.0.1:8080"  # the default stays on loopback


def test_a_taken_console_address_leaves_the_server_charging_without_a_console(served, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        console_port = taken.getsockname()[1]
        server = served([OCC, "serve", "--port", str(free_port()), "--metrics-port", "0", "--data-dir",
                         str(tmp_path / "data"), "--admin-listen", f"127.0.0.1:{free_port()}", "--no-settle",
                         "--console-listen", f"127.0.0.1:{console_port}"])  # fmt: skip
        server.listening()
    (announced,) = [r for r in server.records() if r["msg"].startswith("occ serve: gRPC on")]
    assert announced["console_url"] == "off"
    assert any("operator console is not started" in r["msg"] and str(console_port) in r["msg"]
               for r in server.records())  # fmt: skip
    assert server.stop() == 0


def test_over_tls_the_console_speaks_https_and_reaches_admin_over_tls(served, tmp_path):
    certs = make_certs(tmp_path / "pki")
    admin_port, console_port, data = free_port(), free_port(), tmp_path / "data"
    server = served(
        [
            OCC,
            "serve",
            "--port",
            str(free_port()),
            "--metrics-port",
            "0",
            "--data-dir",
            str(data),
            "--tariff",
            str(REPO / "examples" / "tariff"),
            "--demo",
            "--tls-cert",
            str(certs.server_cert),
            "--tls-key",
            str(certs.server_key),
            "--admin-listen",
            f"127.0.0.1:{admin_port}",
            "--console-listen",
            f"127.0.0.1:{console_port}",
        ],
        OCC_CONSOLE_ADMIN_CA_FILE=str(certs.ca),
    )  # (the server's certificate is the CA's, not its own)
    server.listening()
    visitor = Visitor(f"https://127.0.0.1:{console_port}", ssl.create_default_context(cafile=str(certs.ca)))
    server.wait_for("the console answering over HTTPS", lambda: _answers(visitor))
    page = visitor.open("/sign-in", {"token": (data / "admin-token").read_text().strip()})
    assert "<h1>Dashboard</h1>" in page and "demo" in visitor.open("/accounts")  # Admin reached over TLS
    assert all(cookie.secure for cookie in visitor.cookies)
    assert server.stop() == 0

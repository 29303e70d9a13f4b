"""A console served over TLS marks its cookie Secure; the charts say in text what they draw."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from occ.console import charts
from occ.console.admin import Admin
from occ.console.web import make_app


async def test_over_tls_the_session_cookie_is_secure_http_only_and_same_site(store):
    app = make_app(Admin("127.0.0.1:1"), store, metrics_urls=[], secure=True)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client, client.get("/sign-in") as response:
        cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_line_chart_states_its_latest_value_and_range():
    svg = charts.line([(0, 1.0), (1, 3.0), (2, 2.0)], label="Calls per second", unit="/s")
    assert 'aria-label="Calls per second: latest 2/s, range 1–3/s over 3 points"' in svg
    assert svg.count("<polyline") == 1


def test_bars_escape_their_labels():
    svg = charts.bars([("<script>", 5.0)], label="Answers")
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_visitors_that_never_sign_in_cannot_push_out_a_signed_in_user(monkeypatch):
    from occ.console import security

    monkeypatch.setattr(security, "MAX_SESSIONS", 3)
    signins = security.SignIns(idle_s=3600)
    user_id, user = signins.new()
    user.token = "occ_x"
    for _ in range(10):
        signins.new()
    assert signins.get(user_id) is user

"""Who is signed in, and what they may do: sign-in sessions, CSRF tokens and the console's role table.

A sign-in is a random session id in a cookie (HttpOnly, SameSite=Strict, Secure when the console speaks TLS) naming a
record kept in this process's memory: the user's Admin token, who the Admin API says they are (``WhoAmI``) and the
CSRF token every form carries back. The id changes at sign-in (no fixation) and the record ends at sign-out or after
``console_session_idle_s`` without a request; a restarted console signs everyone out.

Every POST must carry the CSRF token of its session (also the sign-in form's, made for the visitor before
signing in): a request without it, or with another, is refused with 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

COOKIE = "occ_console"
MAX_SESSIONS = 10_000  # sessions kept at most (the oldest of visitors not signed in go first): bounded memory
OPEN_PATHS = ("/sign-in", "/static/")

# Actions of the console → the roles that may take them (``admin`` may take every one). Changes made through the
# Admin API are checked again by the server (occ/api/roles.py); those on the SQL store are checked here only.
ACTIONS: dict[str, frozenset[str]] = {
    "account.status": frozenset({"operator", "finance"}),  # UpdateAccount
    "account.money": frozenset({"finance"}),  # Transact
    "session.abort": frozenset({"operator"}),  # AbortSession
    "tariff.check": frozenset({"operator", "finance"}),  # CheckTariff (finance: to re-rate with the tariff)
    "tariff.publish": frozenset({"operator"}),  # LoadTariff
    "xdr.status": frozenset({"finance"}),  # except / restore
    "rerate": frozenset({"finance"}),
    "billing": frozenset({"finance"}),  # bill runs, out-of-turn invoices, re-issues
    "outbox": frozenset({"finance"}),  # retry / release a REJECTED document
}


def may(role: str, action: str) -> bool:
    """May a user of ``role`` take ``action`` (a key of :data:`ACTIONS`)?"""
    return role == "admin" or role in ACTIONS[action]


class SignIn(msgspec.Struct, kw_only=True):
    """One browser's session with the console.

    Attributes:
        csrf: the token every form of this session carries.
        token: the user's Admin bearer token (empty before sign-in).
        name, role, actor: who the Admin API says the token belongs to.
        seen: when the last request came (``time.monotonic()``).
        notices: messages for the next page shown (after a redirect).
        tariff_upload: the last tariff checked on the tariffs page (a LoadTariffRequest's bytes), for its publishing.
    """

    csrf: str
    seen: float
    token: str = ""
    name: str = ""
    role: str = ""
    actor: str = ""
    notices: list[str] = msgspec.field(default_factory=list)
    tariff_upload: bytes = b""

    @property
    def signed_in(self) -> bool:
        return bool(self.token)


SIGNIN = web.RequestKey("signin", SignIn)
SESSION_ID = web.RequestKey("session_id", str)
NEW_SESSION_ID = web.RequestKey("new_session_id", str)
"""Set by the sign-in handler: the id that replaces the visitor's (sent in the cookie of its answer)."""


class SignIns:
    """The sign-in sessions of this console process."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._sessions: dict[str, SignIn] = {}

    def new(self) -> tuple[str, SignIn]:
        self._expire()
        while len(self._sessions) >= MAX_SESSIONS:  # the oldest visitor not signed in goes first
            oldest = min(self._sessions, key=lambda sid: (self._sessions[sid].signed_in, self._sessions[sid].seen))
            del self._sessions[oldest]
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = SignIn(csrf=secrets.token_urlsafe(32), seen=time.monotonic())
        return session_id, self._sessions[session_id]

    def get(self, session_id: str | None) -> SignIn | None:
        found = self._sessions.get(session_id or "")
        if found is None or time.monotonic() - found.seen > self.idle_s:
            return None
        found.seen = time.monotonic()
        return found

    def drop(self, session_id: str | None) -> None:
        self._sessions.pop(session_id or "", None)

    def _expire(self) -> None:
        now = time.monotonic()
        for session_id in [sid for sid, s in self._sessions.items() if now - s.seen > self.idle_s]:
            del self._sessions[session_id]


def see_other(location: str) -> web.Response:
    """303 to ``location`` (after a form: the browser GETs it, so a reload never posts again)."""
    return web.Response(status=303, headers={"Location": location})


def set_cookie(response: web.StreamResponse, session_id: str, *, secure: bool) -> None:
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="Strict", secure=secure, path="/")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guard(signins: SignIns, *, secure: bool) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The middleware: a session for every visitor, CSRF on every POST, sign-in before anything but the open paths,
    and headers that keep pages out of frames and caches and scripts to the console's own."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/static/"):
            return await handler(request)
        session_id = request.cookies.get(COOKIE)
        signin = signins.get(session_id)
        fresh = signin is None
        if signin is None:
            session_id, signin = signins.new()
        request[SIGNIN], request[SESSION_ID] = signin, session_id
        if request.method == "POST":
            form = await request.post()
            if fresh or not hmac.compare_digest(str(form.get("csrf", "")), signin.csrf):
                response: web.StreamResponse = web.Response(
                    status=403, text="Refused: the form's CSRF token is missing or not this session's. "
                                     "Reload the page and try again.")  # fmt: skip
                return _with_headers(response, request, fresh, secure)
        if not signin.signed_in and not request.path.startswith(OPEN_PATHS):
            response = see_other("/sign-in")
        else:
            response = await handler(request)
        return _with_headers(response, request, fresh, secure)

    return middleware


def _with_headers(response: web.StreamResponse, request: web.Request, fresh: bool, secure: bool) -> web.StreamResponse:
    if fresh or NEW_SESSION_ID in request:
        set_cookie(response, request.get(NEW_SESSION_ID) or request[SESSION_ID], secure=secure)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response

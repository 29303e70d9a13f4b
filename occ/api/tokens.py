"""Admin bearer tokens, kept hashed in one JSON file (``<data_dir>/admin-tokens.json``, mode 0600).

A token is ``occ_`` and 43 URL-safe characters (32 random bytes). The file keeps only its SHA-256, with a name and
a role; ``occ token create`` prints the token once. The server looks a token up by its hash and reads the file again
whenever it changes, so a new or revoked token counts from the next call, in every worker, without a restart.

Edits (create, revoke) hold an exclusive lock on ``<file>.lock`` and replace the file whole (a temporary file
renamed over it), so a reader never sees half a file and two edits never lose one another.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from occ.api.roles import ADMIN, ROLES

log = logging.getLogger(__name__)

TOKEN_PREFIX = "occ_"
TOKENS_FILE = "admin-tokens.json"
LOCAL_TOKEN_FILE = "admin-token"  # the local operator's token, in the data dir
LOCAL_TOKEN_NAME = "local-admin"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class TokenError(ValueError):
    """A token file that cannot be read or written, or a bad name or role; the message says which."""


class TokenRecord(msgspec.Struct, frozen=True):
    """One token as stored.

    Attributes:
        name: who holds it (unique in the file; recorded as the actor ``token:<name>``).
        role: viewer, operator, finance or admin (``occ.api.roles``).
        sha256: hex SHA-256 of the token; the token itself is never stored.
        created_ms: when it was created, Unix ms.
    """

    name: str
    role: str
    sha256: str
    created_ms: int


class _Book(msgspec.Struct):
    tokens: list[TokenRecord] = msgspec.field(default_factory=list)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TokenError(f"token name {name[:80]!r}: 1–64 characters of letters, digits and . _ @ -, starting with a "
                         "letter or digit")  # fmt: skip
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise TokenError(f"role {role[:40]!r}: must be one of {', '.join(ROLES)}")
    return role


class TokenFile:
    """The token file at ``path`` (it need not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[TokenRecord]:
        """Every token record; none when the file does not exist. Raises :class:`TokenError`."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise TokenError(f"token file {self.path}: {error.strerror or error}") from None
        try:
            return msgspec.json.decode(data, type=_Book).tokens
        except msgspec.DecodeError as error:
            raise TokenError(f"token file {self.path}: not a token file ({error})") from None

    def create(self, name: str, role: str, *, replace: bool = False) -> str:
        """Add a token for ``name`` with ``role`` and return it (the only time it is seen in clear)."""
        check_name(name)
        check_role(role)
        token = new_token()
        record = TokenRecord(name=name, role=role, sha256=digest(token), created_ms=int(time.time() * 1000))

        def add(records: list[TokenRecord]) -> list[TokenRecord]:
            if not replace and any(r.name == name for r in records):
                raise TokenError(f"a token named {name!r} exists already (revoke it first)")
            return [r for r in records if r.name != name] + [record]

        self._update(add)
        return token

    def revoke(self, name: str) -> bool:
        """Remove the token of ``name``; False when there was none."""
        found = []

        def remove(records: list[TokenRecord]) -> list[TokenRecord]:
            found.extend(r for r in records if r.name == name)
            return [r for r in records if r.name != name]

        self._update(remove)
        return bool(found)

    def _update(self, change: Callable[[list[TokenRecord]], list[TokenRecord]]) -> None:
        with self._locked():
            records = change(self.records())
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "wb") as out:
                    out.write(msgspec.json.format(msgspec.json.encode(_Book(records)), indent=2) + b"\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path)
            except OSError as error:
                temporary.unlink(missing_ok=True)
                raise TokenError(f"token file {self.path}: {error.strerror or error}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise TokenError(f"token file {self.path}: {error.strerror or error}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


class TokenTable:
    """The server's view of a token file: lookups by hash, the file read again when it changes."""

    def __init__(self, path: Path) -> None:
        self.file = TokenFile(path)
        self._seen: tuple[int, int, int] | None = None
        self._by_digest: dict[str, TokenRecord] = {}

    def find(self, token: str) -> TokenRecord | None:
        self._refresh()
        return self._by_digest.get(digest(token))

    def _refresh(self) -> None:
        try:
            status = self.file.path.stat()
            seen = (status.st_ino, status.st_size, status.st_mtime_ns)
        except FileNotFoundError:
            seen = (0, 0, 0)
        except OSError as error:
            log.error("token file unreadable; keeping the tokens read before", extra={"error": str(error)})
            return
        if seen == self._seen:
            return
        try:
            records = self.file.records()
        except TokenError as error:
            log.error("token file unreadable; keeping the tokens read before", extra={"error": str(error)})
            return
        self._seen = seen
        self._by_digest = {record.sha256: record for record in records}


def bootstrap_local_token(data_dir: Path, tokens: TokenFile) -> Path | None:
    """The local operator's token: when ``<data_dir>/admin-token`` is missing, create a token of role ``admin``
    (replacing an earlier ``local-admin``) and write it there, mode 0600. Returns the path when it was written."""
    path = data_dir / LOCAL_TOKEN_FILE
    try:  # claimed first, so that two servers starting at once cannot both replace local-admin
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(descriptor, "w") as out:
        try:
            token = tokens.create(LOCAL_TOKEN_NAME, ADMIN, replace=True)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        out.write(token + "\n")
    return path


def read_token_file(path: Path) -> str:
    """The token in a token file (``admin-token``), stripped; TokenError when unreadable or empty."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise TokenError(f"token file {path}: {error.strerror or error}") from None
    if not token:
        raise TokenError(f"token file {path} is empty")
    return token

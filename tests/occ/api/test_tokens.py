"""Admin tokens: hashed at rest in a 0600 file, looked up by hash, the file read again when it changes; the local
operator's token written once by ``occ serve``."""

from __future__ import annotations

import pytest

from occ.api.tokens import (
    LOCAL_TOKEN_FILE,
    TOKENS_FILE,
    TokenError,
    TokenFile,
    TokenTable,
    bootstrap_local_token,
    digest,
    read_token_file,
)


def test_a_token_is_stored_as_its_hash_in_a_private_file(tmp_path):
    tokens = TokenFile(tmp_path / TOKENS_FILE)
    token = tokens.create("alice", "finance")
    assert token.startswith("occ_") and len(token) >= 40
    text = (tmp_path / TOKENS_FILE).read_text()
    assert token not in text and digest(token) in text
    assert (tmp_path / TOKENS_FILE).stat().st_mode & 0o777 == 0o600
    [record] = tokens.records()
    assert (record.name, record.role) == ("alice", "finance")


def test_names_and_roles_are_checked_and_a_name_is_unique(tmp_path):
    tokens = TokenFile(tmp_path / TOKENS_FILE)
    tokens.create("alice", "viewer")
    with pytest.raises(TokenError, match="exists already"):
        tokens.create("alice", "admin")
    replaced = tokens.create("alice", "operator", replace=True)
    assert [(r.name, r.role, r.sha256) for r in tokens.records()] == [("alice", "operator", digest(replaced))]
    with pytest.raises(TokenError, match="role 'root'"):
        tokens.create("bob", "root")
    with pytest.raises(TokenError, match="token name"):
        tokens.create("bob smith", "viewer")
    assert not tokens.revoke("nobody") and tokens.revoke("alice") and tokens.records() == []


def test_the_table_follows_the_file_and_keeps_the_last_good_read(tmp_path):
    path = tmp_path / TOKENS_FILE
    tokens, table = TokenFile(path), TokenTable(path)
    assert table.find("occ_x") is None  # no file yet: no tokens
    first = tokens.create("a", "viewer")
    assert table.find(first).name == "a"
    second = tokens.create("b", "admin")
    assert table.find(second).role == "admin"
    tokens.revoke("a")
    assert table.find(first) is None
    path.write_text("{not json")  # a broken edit by hand: the tokens read before stay
    assert table.find(second).name == "b"


def test_the_local_operators_token_is_written_once_and_can_be_rotated(tmp_path):
    tokens = TokenFile(tmp_path / TOKENS_FILE)
    written = bootstrap_local_token(tmp_path, tokens)
    assert written == tmp_path / LOCAL_TOKEN_FILE
    assert written.stat().st_mode & 0o777 == 0o600
    token = read_token_file(written)
    table = TokenTable(tmp_path / TOKENS_FILE)
    assert (table.find(token).name, table.find(token).role) == ("local-admin", "admin")
    assert bootstrap_local_token(tmp_path, tokens) is None  # a restart keeps it
    assert read_token_file(written) == token

    written.unlink()  # rotate: delete the file and start again
    bootstrap_local_token(tmp_path, tokens)
    rotated = read_token_file(written)
    assert rotated != token and table.find(token) is None and table.find(rotated).role == "admin"
    assert [r.name for r in tokens.records()] == ["local-admin"]

"""The settlement store on a PostgreSQL that takes TLS only, checked the strict way: ``sslmode=verify-full`` (the
server's certificate signed by our CA and naming the host), with a client certificate as the login.

A private PostgreSQL started here with ssl=on and trustme certificates (``tests/postgres.py``, ``tests/certs.py``).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from certs import make_certs
from click.testing import CliRunner
from postgres import PostgresServer
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from occ.cli import main
from settlement.store.database import open_store
from settlement.store.migrate import head, upgrade


@pytest.fixture(scope="module")
def tls_postgres(tmp_path_factory):
    certs = make_certs(tmp_path_factory.mktemp("pg-certs"), client_name="occ")  # the certificate logs in as "occ"
    server = PostgresServer(tls=certs, client_certificates=True)
    try:
        yield server, certs
    finally:
        server.stop()


def url(server: PostgresServer, database: str, **query: str) -> str:
    return f"postgresql://occ@127.0.0.1:{server.port}/{database}?{urlencode(query)}"


def strict(certs, **changes: str) -> dict[str, str]:
    query = {"sslmode": "verify-full", "sslrootcert": str(certs.ca), "sslcert": str(certs.client_cert),
             "sslkey": str(certs.client_key)}  # fmt: skip
    return {name: value for name, value in {**query, **changes}.items() if value}


def test_the_store_migrates_and_writes_over_verify_full_tls_with_a_client_certificate(tls_postgres):
    server, certs = tls_postgres
    database = server.new_database().rsplit("/", 1)[1]
    engine = open_store(url(server, database, **strict(certs)))
    try:
        upgrade(engine)
        with engine.connect() as connection:
            ssl, version = connection.execute(
                text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).one()
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert ssl is True and version.startswith("TLSv1.")
    assert revision == head()


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"sslrootcert": "other"}, "certificate verify failed"),  # a server our CA did not sign: not trusted
        ({"sslcert": "", "sslkey": ""}, "certificate"),  # no client certificate: no login
        ({"sslmode": "disable", "sslrootcert": "", "sslcert": "", "sslkey": ""}, "no encryption"),  # plain TCP
    ],
)
def test_the_store_refuses_what_verify_full_and_the_server_do_not_trust(tls_postgres, changes, refusal):
    server, certs = tls_postgres
    database = server.new_database().rsplit("/", 1)[1]
    if changes.get("sslrootcert") == "other":
        changes = {**changes, "sslrootcert": str(certs.other_ca)}
    engine = open_store(url(server, database, **strict(certs, **changes)))
    try:
        with pytest.raises(OperationalError, match=refusal), engine.connect():
            pass
    finally:
        engine.dispose()


def test_occ_db_status_says_why_in_one_line(tls_postgres):
    server, certs = tls_postgres
    database = server.new_database().rsplit("/", 1)[1]
    good = url(server, database, **strict(certs))
    assert CliRunner().invoke(main, ["db", "upgrade", "--db-url", good]).exit_code == 0
    shown = CliRunner().invoke(main, ["db", "status", "--db-url", good])
    assert shown.exit_code == 0 and f"revision {head()}" in shown.output
    wrong = url(server, database, **strict(certs, sslrootcert=str(certs.other_ca)))
    failed = CliRunner().invoke(main, ["db", "status", "--db-url", wrong])
    assert failed.exit_code == 1 and not isinstance(failed.exception, OperationalError), failed.exception
    assert "cannot open the settlement store" in failed.output and "certificate verify failed" in failed.output

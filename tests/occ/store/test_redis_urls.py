"""Redis URLs: settings added to them, read back for a cluster and for Sentinel, shown without secrets; the settings'
checks of TLS, Sentinel and replica options."""

from __future__ import annotations

from pathlib import Path

import pytest

from occ.settings import Settings, SettingsError
from occ.store.acl import setuser_command
from occ.store.urls import Access, node_options, redacted, sentinel_address, with_access

TLS = Access(tls_ca_file="/etc/occ/ca.pem", tls_cert_file="/etc/occ/occ.pem", tls_key_file="/etc/occ/occ.key")


def test_settings_fill_in_what_the_url_lacks_and_never_override_it():
    assert with_access("rediss://h:6380/0", TLS) == (
        "rediss://h:6380/0?ssl_ca_certs=/etc/occ/ca.pem&ssl_certfile=/etc/occ/occ.pem&ssl_keyfile=/etc/occ/occ.key"
    )
    assert (
        with_access("redis://h:1/0", Access(username="occ", password="p@ss word")) == "redis://occ:p%40ss%20word@h:1/0"
    )
    own = "rediss://me:mine@h:1/0?ssl_ca_certs=/mine.pem"
    assert with_access(own, Access(username="occ", password="x", tls_ca_file="/other.pem")) == own
    assert with_access("", TLS) == ""  # the embedded Redis, not started yet


def test_a_cluster_takes_its_options_from_the_first_url():
    url = with_access("rediss://h1:7000,rediss://h2:7001", Access(password="pw", tls_ca_file="/ca.pem"))
    assert url == "rediss://:pw@h1:7000?ssl_ca_certs=/ca.pem,rediss://h2:7001"
    assert node_options(url) == {"password": "pw", "ssl_ca_certs": "/ca.pem", "ssl": True}
    assert node_options("rediss://h1:7000,h2:7001?ssl_cert_reqs=required") == {"ssl_cert_reqs": "required", "ssl": True}


def test_a_sentinel_url_names_the_sentinels_the_service_and_their_own_credentials():
    url = with_access("rediss+sentinel://s1:26379,s2,s3:26381/occ-main/2?sentinel_password=spw",
                      Access(username="occ", password="pw", tls_ca_file="/ca.pem"))  # fmt: skip
    address = sentinel_address(url)
    assert address.sentinels == [("s1", 26379), ("s2", 26379), ("s3", 26381)]
    assert (address.service, address.db) == ("occ-main", 2)
    assert address.sentinel_options == {"password": "spw", "ssl_ca_certs": "/ca.pem", "ssl": True}
    assert node_options(url) == {"username": "occ", "password": "pw", "ssl_ca_certs": "/ca.pem", "ssl": True}
    with pytest.raises(ValueError, match="names the service"):
        sentinel_address("redis+sentinel://s1:26379")


def test_passwords_never_show():
    assert redacted("redis+sentinel://occ:pw@s1:1,s2:2/m?sentinel_password=spw&ssl_ca_certs=/ca.pem") == (
        "redis+sentinel://occ:***@s1:1,s2:2/m?sentinel_password=***&ssl_ca_certs=/ca.pem"
    )
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"redis_tls_ca_file": "/ca.pem"}, "redis_tls_ca_file needs a rediss://"),
        ({"redis_url": "redis://h:1/0", "redis_tls_ca_file": "/ca.pem"}, "TLS is off for redis://"),
        ({"redis_url": "rediss://h:1/0", "redis_tls_cert_file": "/c.pem"}, "redis_tls_cert_file and redis_tls_key"),
        ({"redis_url": "redis+sentinel://s:1/m", "redis_cluster": True}, "redis_cluster cannot be used with"),
        ({"min_replicas_acked": 1}, "min_replicas_acked needs a redis_url with replicas"),
        ({"redis_url": "redis://h:1", "redis_cluster": True, "min_replicas_acked": 1}, "on Redis Cluster"),
        ({"redis_url": "redis://h:1/0", "min_replicas_acked": 1, "replica_ack_timeout_ms": 0}, "replica_ack_timeout"),
    ],
)
def test_settings_refuse_tls_sentinel_and_replica_options_that_cannot_work(settings, message):
    with pytest.raises(SettingsError, match=message):
        Settings.load(None, {}, **settings)


def test_a_sentinel_url_with_replica_acks_is_accepted():
    settings = Settings.load(None, {"OCC_MIN_REPLICAS_ACKED": "1", "OCC_REDIS_PASSWORD": "pw"},
                             redis_url="rediss+sentinel://s:26379/occ", redis_tls_ca_file="/ca.pem")  # fmt: skip
    assert settings.min_replicas_acked == 1 and settings.redis_password == "pw"


def test_the_acl_line_in_the_docs_is_the_one_the_code_gives():
    docs = (Path(__file__).resolve().parents[3] / "docs" / "operations.md").read_text()
    assert " ".join(setuser_command("occ", "PASSWORD")) in docs.splitlines()

"""Settings: defaults ← TOML file ← OCC_* environment ← overrides, and one clear error naming key and source."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from occ.settings import Settings, SettingsError, load_struct


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "occ.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment():
    settings = Settings.load(None, {})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.metrics_port) == ("127.0.0.1", 50051, 9464)
    assert settings.data_dir == Path("data")
    assert settings.redis_url == "" and settings.workers == 1 and settings.shards == 256


def test_each_layer_overrides_the_one_before(tmp_path):
    path = write(tmp_path, 'port = 1111\nworkers = 2\nhost = "::1"\n')
    env = {"OCC_PORT": "2222", "OCC_SHARDS": "16"}
    assert Settings.load(path, {}).port == 1111
    from_env = Settings.load(path, env)
    assert (from_env.port, from_env.workers, from_env.shards, from_env.host) == (2222, 2, 16, "::1")
    overridden = Settings.load(path, env, port=3333, workers=None, host=None)
    assert (overridden.port, overridden.workers, overridden.host) == (3333, 2, "::1")


def test_environment_text_is_converted():
    env = {
        "OCC_WORKERS": "4",
        "OCC_LOG_JSON": "false",
        "OCC_REDIS_CLUSTER": "true",
        "OCC_REDIS_URL": "redis://127.0.0.1:7000",
        "OCC_DATA_DIR": "/var/lib/occ",
        "OCC_GRACE_S": "2.5",
        "OCC_BATCH_WINDOW_MS": "0",
        "OTHER": "ignored",
        "OCC_NOT_A_SETTING": "ignored too",
    }
    settings = Settings.load(None, env)
    assert settings.workers == 4 and settings.log_json is False and settings.redis_cluster is True
    assert settings.data_dir == Path("/var/lib/occ") and settings.grace_s == 2.5 and settings.batch_window_ms == 0


def test_overrides_accept_cli_types():
    settings = Settings.load(None, {}, data_dir=Path("/tmp/x"), metrics_port=0, tariff_dir="examples/tariff")
    assert settings.data_dir == Path("/tmp/x") and settings.metrics_port == 0
    assert settings.tariff_dir == "examples/tariff"


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]


def test_unknown_key_in_the_file_names_key_and_file(tmp_path):
    path = write(tmp_path, "port = 1\nworker = 2\n")
    with pytest.raises(SettingsError, match=r"config file .*occ\.toml, key worker: unknown setting \(known: .*workers"):
        Settings.load(path, {})


def test_bad_type_in_the_file_names_key_and_file(tmp_path):
    path = write(tmp_path, 'port = "50051"\n')
    with pytest.raises(SettingsError, match=r"occ\.toml, key port: '50051' is not valid \(Expected `int`, got `str`\)"):
        Settings.load(path, {})


def test_bad_environment_value_names_the_variable():
    with pytest.raises(SettingsError, match=r"environment variable OCC_WORKERS: 'two' is not valid"):
        Settings.load(None, {"OCC_WORKERS": "two"})
    with pytest.raises(SettingsError, match=r"OCC_LOG_JSON: 'maybe'"):
        Settings.load(None, {"OCC_LOG_JSON": "maybe"})


def test_unknown_override_is_an_error():
    with pytest.raises(SettingsError, match=r"override prot: unknown setting"):
        Settings.load(None, {}, prot=1)


def test_out_of_range_values_name_the_field_and_where_it_came_from(tmp_path):
    path = write(tmp_path, "shards = 0\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load(path, {"OCC_WORKERS": "0"}, metrics_port=70000)
    message = str(caught.value)
    assert "shards must be 1–16384, got 0 (from config file" in message
    assert "workers must be 1–1024, got 0 (from environment variable OCC_WORKERS)" in message
    assert "metrics_port must be 0 (off) or 1–65535, got 70000 (from override metrics_port)" in message
    assert {field for field, _ in caught.value.problems} == {"shards", "workers", "metrics_port"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"port": 0}, "port"),
        ({"host": ""}, "host"),
        ({"redis_url": "localhost:6379"}, "redis_url"),
        ({"redis_cluster": True}, "redis_cluster"),
        ({"redis_appendfsync": "no"}, "redis_appendfsync"),
        ({"shards": 16385}, "shards"),
        ({"validity_time_s": 0}, "validity_time_s"),
        ({"sweep_interval_s": 0}, "sweep_interval_s"),
        ({"batch_max": 0}, "batch_max"),
        ({"max_message_bytes": 10}, "max_message_bytes"),
        ({"log_level": "LOUD"}, "log_level"),
        ({"grace_s": -1}, "grace_s"),
    ],
)
def test_range_checks(overrides, field):
    with pytest.raises(SettingsError, match=rf"\b{field}\b") as caught:
        Settings.load(None, {}, **overrides)
    assert [name for name, _ in caught.value.problems] == [field]


def test_constructing_directly_is_checked_too():
    with pytest.raises(SettingsError, match="workers must be"):
        Settings(workers=0)
    assert msgspec.structs.replace(Settings(), redis_url="redis://127.0.0.1:1/0").redis_url.endswith(":1/0")


def test_file_problems_are_settings_errors(tmp_path):
    with pytest.raises(SettingsError, match=r"cannot be read"):
        Settings.load(tmp_path / "missing.toml", {})
    with pytest.raises(SettingsError, match=r"not valid TOML"):
        Settings.load(write(tmp_path, "port = \n"), {})


class Database(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = "sqlite:///occ.db"
    pool: int = 5


class Nested(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str = "x"
    db: Database = msgspec.field(default_factory=Database)


def test_nested_sections_from_table_and_double_underscore_variables(tmp_path):
    path = write(tmp_path, 'name = "y"\n[db]\nurl = "postgresql://h/occ"\n')
    loaded = load_struct(Nested, path, {"OCC_DB__POOL": "9"}, {})
    assert loaded == Nested(name="y", db=Database(url="postgresql://h/occ", pool=9))
    assert load_struct(Nested, None, {}, {}) == Nested()
    with pytest.raises(SettingsError, match=r"key db\.size: unknown setting"):
        load_struct(Nested, write(tmp_path, "[db]\nsize = 1\n"), {}, {})
    with pytest.raises(SettingsError, match=r"environment variable OCC_DB__POOL: 'many'"):
        load_struct(Nested, None, {"OCC_DB__POOL": "many"}, {})


@pytest.mark.parametrize(("pool", "workers", "share"), [(64, 1, 64), (64, 2, 32), (64, 3, 22), (8, 4, 4), (64, 64, 4)])
def test_each_worker_opens_its_share_of_the_redis_pool(pool, workers, share):
    assert Settings(redis_pool_size=pool, workers=workers).worker_redis_pool_size == share

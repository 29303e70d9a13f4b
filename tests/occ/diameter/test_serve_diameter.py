"""``occ serve --diameter-port`` as a real process (two workers sharing the port), and the settings behind it."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from diameter_peer import Wire, allowed
from served import Served, clean_environment

from occ.cli import main
from occ.diameter_settings import allowed_peers
from occ.settings import Settings, SettingsError
from occ.store.process import free_port

REPO = Path(__file__).resolve().parents[3]


def test_occ_serve_with_diameter_port_answers_cer_in_every_worker(tmp_path):
    port, diameter_port, metrics_port = free_port(), free_port(), free_port()
    occ = str(Path(sys.executable).with_name("occ"))
    args = [occ, "serve", "--port", str(port), "--metrics-port", str(metrics_port), "--data-dir",
            str(tmp_path / "data"), "--tariff", str(REPO / "examples" / "tariff"), "--workers", "2",
            "--diameter-port", str(diameter_port), "--diameter-peers", allowed()]  # fmt: skip
    served = Served(args, tmp_path / "serve.log", clean_environment(), port=port, metrics_port=metrics_port)
    try:
        served.wait_for("diameter listening twice", lambda: len(served.messages("diameter listening")) == 2)
        (announced,) = [line for line in served.records() if line["msg"].startswith("occ serve: gRPC on")]
        assert f"Diameter 127.0.0.1:{diameter_port} as occ.localdomain (realm localdomain)" in announced["msg"]
        for _ in range(4):  # connections land on either worker: each answers
            wire = Wire(diameter_port)
            answer = wire.capabilities()
            wire.close()
            assert answer.result_code == 2001
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
            text = page.read().decode()
        assert 'occ_diameter_messages_total{command="CE",direction="sent",kind="answer",result_code="2001"} 4.0' in text
        assert served.stop() == 0
    finally:
        served.kill()


def test_the_gateway_is_off_by_default_and_configured_by_file_and_flag(tmp_path):
    assert Settings.load(None, {}).diameter_port == 0
    config = tmp_path / "occ.toml"
    config.write_text('diameter_port = 3868\ndiameter_peers = "pgw.test=10.0.0.0/24, pgw.test=::1"\n')
    settings = Settings.load(config, {})
    assert (settings.diameter_port, settings.diameter_origin_host) == (3868, "occ.localdomain")
    assert set(allowed_peers(settings.diameter_peers)["pgw.test"]) >= {__import__("ipaddress").ip_network("::1")}
    assert Settings.load(config, {"OCC_DIAMETER_PORT": "3869"}).diameter_port == 3869


@pytest.mark.parametrize(("overrides", "field"), [
    ({"diameter_port": 70000}, "diameter_port"),
    ({"diameter_peers": "pgw.test"}, "diameter_peers"),
    ({"diameter_peers": "pgw.test=not-an-address"}, "diameter_peers"),
    ({"diameter_port": 3868, "diameter_host": "0.0.0.0"}, "diameter_host"),  # plain TCP off loopback: on purpose only
])  # fmt: skip
def test_bad_diameter_settings_name_the_field(overrides, field):
    with pytest.raises(SettingsError) as error:
        Settings.load(None, {}, **overrides)
    assert field in {name for name, _ in error.value.problems}
    assert field in str(error.value)


def test_a_non_loopback_diameter_host_is_accepted_with_allow_plaintext():
    settings = Settings.load(None, {}, diameter_port=3868, diameter_host="0.0.0.0", allow_plaintext=True)
    assert settings.diameter_host == "0.0.0.0"


def test_serve_help_lists_the_diameter_flags():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert "--diameter-port" in result.output and "--diameter-peers" in result.output

"""The tariffs page (the tariff in force; an upload checked, compared, then published) and the dashboard."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from aiohttp import FormData
from online_app import EXAMPLE_TARIFF
from prometheus_client import REGISTRY, start_http_server

from occ.api.tariff_source import local_files
from occ.console.context import METRICS
from occ.metrics import REQUESTS
from occ.store.process import free_port


def _form(browser, files: dict[str, bytes], *, archive: bool = False) -> FormData:
    data = FormData()
    data.add_field("csrf", browser.csrf)
    if archive:
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w") as zipped:
            for name, content in files.items():
                zipped.writestr(f"tariff/{name}", content)
        data.add_field("archive", packed.getvalue(), filename="tariff.zip")
    else:
        for name, content in files.items():
            data.add_field("files", content, filename=name, content_type="text/csv")
    return data


async def _upload(browser, files: dict[str, bytes], *, archive: bool = False) -> tuple[int, str]:
    async with browser.client.post("/tariffs/check", data=_form(browser, files, archive=archive)) as response:
        text = await response.text()
        return response.status, text


async def test_the_tariff_in_force_is_shown(console):
    browser = await console.sign_in("viewer")
    page = await browser.get("/tariffs")
    assert console.online.app.tariffs.current.hash in page.text and "retail" in page.text
    assert "Upload a new tariff" not in page.text  # a viewer publishes nothing


async def test_a_broken_tariff_shows_its_findings_with_file_and_line_and_cannot_be_published(console):
    current = console.online.app.tariffs.current.hash
    files = local_files(Path(EXAMPLE_TARIFF))
    files["rates.csv"] += b"BROKEN,not-money,,\n"
    browser = await console.sign_in("operator")
    await browser.get("/tariffs")
    status, text = await _upload(browser, files)
    assert status == 200 and "cannot be published" in text and "rates.csv" in text and "Publish" not in text
    page = await browser.post("/tariffs/publish")
    assert page.status == 400 and "nothing checked" in page.text
    assert console.online.app.tariffs.current.hash == current


async def test_a_new_tariff_archive_is_compared_then_published(console):
    before = console.online.app.tariffs.current.hash
    files = local_files(Path(EXAMPLE_TARIFF))
    files["tariff.csv"] = files["tariff.csv"].replace(b"OCC example tariff", b"OCC tariff 2027")
    browser = await console.sign_in("operator")
    await browser.get("/tariffs")
    status, text = await _upload(browser, files, archive=True)
    assert status == 200 and "name &#39;OCC example tariff&#39; → &#39;OCC tariff 2027&#39;" in text
    assert console.online.app.tariffs.current.hash == before  # checked, not published yet
    browser.csrf = text.split('name="csrf" value="')[1].split('"')[0]
    page = await browser.post("/tariffs/publish")
    assert "published: it is in force now" in page.text
    assert console.online.app.tariffs.current.hash != before
    assert console.online.app.tariffs.current.tariff.name == "OCC tariff 2027"


async def test_a_viewer_may_not_upload_a_tariff(console):
    browser = await console.sign_in("viewer")
    await browser.get("/tariffs")
    status, _ = await _upload(browser, local_files(Path(EXAMPLE_TARIFF)))
    assert status == 403


async def test_the_dashboard_draws_the_servers_metrics(console, monkeypatch):
    """A real /metrics page (prometheus-client's own HTTP server on a free port) read twice: rates and answers."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
    try:
        console.app[METRICS].urls = [f"http://127.0.0.1:{port}/metrics"]
        REQUESTS.labels("StartSession", "2001").inc(3)
        browser = await console.sign_in("viewer")  # (lands on the dashboard: the first sample)
        REQUESTS.labels("StartSession", "4012").inc(2)
        monkeypatch.setattr("occ.console.dashboard.MIN_INTERVAL_S", 0.0)
        live = await browser.get("/dashboard/live")
        assert "Answers by result code: " in live.text and "4012" in live.text and "2001" in live.text
        assert "Calls per second: latest" in live.text  # two samples: a rate
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

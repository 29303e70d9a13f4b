"""LoadTariff reads directories only below the tariff root (no '..', no symbolic links, one answer for everything
refused), and takes a tariff uploaded as files or as an archive, within a size limit."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import grpc
import pytest
from online_app import EXAMPLE_TARIFF

from occ.api.tariff_source import TARIFF_FILES, below_root, local_files, unpacked_archive
from occ.core.errors import InvalidRequest
from occ.v1 import admin_pb2 as admin

EXAMPLE = local_files(Path(EXAMPLE_TARIFF))


async def details_of(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details()


def dearer(directory: Path) -> Path:
    """A copy of the example tariff whose mobile minute costs twice as much (another content hash)."""
    shutil.copytree(EXAMPLE_TARIFF, directory)
    intervals = directory / "rate_intervals.csv"
    intervals.write_text(intervals.read_text().replace("MOBILE,0,0.12,60,1", "MOBILE,0,0.24,60,1"))
    return directory


async def test_a_directory_below_the_root_loads_by_relative_or_absolute_path(charging):
    root = charging.app.settings.data_dir / "tariffs"
    dearer(root / "2026" / "feb")
    loaded = await charging.admin.LoadTariff(admin.LoadTariffRequest(directory="2026/feb"))
    assert loaded.changed and loaded.tariff_hash == charging.app.tariffs.current.hash
    again = await charging.admin.LoadTariff(admin.LoadTariffRequest(directory=str(root / "2026" / "feb")))
    assert (again.changed, again.tariff_hash) == (False, loaded.tariff_hash)


async def test_every_path_outside_the_root_gets_one_answer_that_reveals_nothing(charging, tmp_path):
    root = charging.app.settings.data_dir / "tariffs"
    outside = dearer(tmp_path / "outside")
    dearer(root / "inside")
    (root / "escape").symlink_to(outside, target_is_directory=True)  # a link out of the root
    (root / "alias").symlink_to(root / "inside", target_is_directory=True)  # links are not followed at all
    linked = root / "linked-file"
    linked.mkdir()
    for name in TARIFF_FILES:
        if (outside / name).exists():
            (linked / name).symlink_to(outside / name)
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / "rates.csv")  # not a regular file: never opened for reading (it would block)
    before = charging.app.tariffs.current.hash
    paths = ["../outside", str(outside), "inside/../../outside", "escape", "alias", "linked-file", "fifo",
             "missing", "/etc", "x" * 300, "inside/\x00"]  # fmt: skip
    answers = set()
    for path in paths:
        answers.add(await details_of(charging.admin.LoadTariff(admin.LoadTariffRequest(directory=path)),
                                     grpc.StatusCode.INVALID_ARGUMENT))  # fmt: skip
    assert len(answers) == 1, answers
    (answer,) = answers
    assert answer.startswith("directory: is not a tariff directory below the server's tariff root")
    assert "outside" not in answer and "etc" not in answer
    assert charging.app.tariffs.current.hash == before


async def test_a_tariff_uploaded_as_files_loads_and_bad_uploads_name_the_field(charging, tmp_path):
    files = local_files(dearer(tmp_path / "dearer"))
    loaded = await charging.admin.LoadTariff(admin.LoadTariffRequest(files=files))
    assert loaded.changed and charging.app.tariffs.current.hash == loaded.tariff_hash

    stray = await details_of(charging.admin.LoadTariff(admin.LoadTariffRequest(files={**files, "../x.csv": b"1"})),
                             grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert stray.startswith("files['../x.csv']: is not a tariff file")
    broken = {**files, "groups.csv": files["groups.csv"].replace(b"EU,400000002", b"EU,4000-02")}
    details = await details_of(charging.admin.LoadTariff(admin.LoadTariffRequest(files=broken)),
                               grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert details.startswith("files: tariff has 1 problem(s)") and "groups.csv:5 [ledger_code]" in details
    both = admin.LoadTariffRequest(directory="x", files=files)
    assert (await details_of(charging.admin.LoadTariff(both), grpc.StatusCode.INVALID_ARGUMENT)).startswith(
        "directory: give exactly one of directory, files and archive")  # fmt: skip
    assert charging.app.tariffs.current.hash == loaded.tariff_hash


def _zip(files: dict[str, bytes], folder: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(folder + name, content)
    return buffer.getvalue()


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


async def test_a_tariff_uploaded_as_a_zip_or_a_tarball_loads(charging, tmp_path):
    files = local_files(dearer(tmp_path / "dearer"))
    zipped = await charging.admin.LoadTariff(admin.LoadTariffRequest(archive=_zip(files)))
    assert zipped.changed
    back = await charging.admin.LoadTariff(
        admin.LoadTariffRequest(archive=_tar([(f"example/{n}", c) for n, c in EXAMPLE.items()]))
    )
    assert back.changed and back.tariff_hash != zipped.tariff_hash
    again = await charging.admin.LoadTariff(admin.LoadTariffRequest(archive=_zip(files, folder="dearer/")))
    assert (again.changed, again.tariff_hash) == (True, zipped.tariff_hash)


def test_archives_with_links_escapes_or_bombs_are_refused():
    with pytest.raises(InvalidRequest, match=r"member '\.\./rates\.csv'"):
        unpacked_archive(_tar([("../rates.csv", b"x")]), 1 << 20)
    link = tarfile.TarInfo("rates.csv")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(InvalidRequest, match="is not a regular file"):
        unpacked_archive(_tar([link]), 1 << 20)
    zipped_link = io.BytesIO()
    with zipfile.ZipFile(zipped_link, "w") as archive:
        entry = zipfile.ZipInfo("rates.csv")
        entry.external_attr = (0o120777) << 16  # a symbolic link, as zip records one
        archive.writestr(entry, "/etc/passwd")
    with pytest.raises(InvalidRequest, match="is not a regular file"):
        unpacked_archive(zipped_link.getvalue(), 1 << 20)
    with pytest.raises(InvalidRequest, match="files belong at the top or in one folder"):
        unpacked_archive(_zip(EXAMPLE, folder="a/b/"), 1 << 20)
    with pytest.raises(InvalidRequest, match="holds none of the tariff files"):
        unpacked_archive(_tar([("README", b"hello")]), 1 << 20)
    with pytest.raises(InvalidRequest, match="is neither a zip nor a tar"):
        unpacked_archive(b"this is no archive", 1 << 20)
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in about 64 kB
    assert len(bomb) < 100_000
    with pytest.raises(InvalidRequest, match="larger than 1048576 bytes"):
        unpacked_archive(bomb, 1 << 20)  # read no further than the limit allows
    big = _zip({"rates.csv": b"x" * (2 << 20)})
    with pytest.raises(InvalidRequest, match="larger than 1048576 bytes"):
        unpacked_archive(big, 1 << 20)
    assert set(unpacked_archive(_zip(EXAMPLE), 1 << 20)) == set(EXAMPLE)


def test_a_directory_larger_than_the_limit_is_refused(tmp_path):
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "destinations.csv").write_bytes(b"prefix,group\n" + b"44,UK\n" * 2000)
    with pytest.raises(InvalidRequest, match="larger than 4096 bytes"):
        below_root(tmp_path, "big", 4096)

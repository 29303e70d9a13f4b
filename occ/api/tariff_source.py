"""Where ``LoadTariff`` gets a tariff's files: a directory below the tariff root, files uploaded in the request, or an
archive uploaded in the request. Every way ends as ``{file name: content}`` of the known tariff files, at most
``max_bytes`` in all, which :func:`unpacked` writes to a private temporary directory for the loader.

A path is resolved below the root one component at a time (``openat`` with ``O_NOFOLLOW``): ``..``, a symbolic link
anywhere on the way (to a directory or a file), anything that is not a directory or a regular file, and a path that
does not exist are all refused with the same INVALID_ARGUMENT, which says nothing of what is outside the root or
whether a path exists. Archives (zip, tar, tar.gz/bz2/xz) may hold the files at their top or in one folder; their
members are read with bounds, so a compression bomb costs at most a few times ``max_bytes``.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath

from occ.core.errors import InvalidRequest

TARIFF_FILES = ("tariff.csv", "groups.csv", "destinations.csv", "rates.csv", "rate_intervals.csv", "bands.csv",
                "rate_plans.csv")  # fmt: skip
MAX_PATH_CHARS = 1024
MAX_ARCHIVE_MEMBERS = 1000
_UNPACK_HEADROOM = 2  # a tar stream may be this many times max_bytes (headers, padding, other files) plus 1 MiB
_COMPRESSED: dict[bytes, Callable[..., io.BufferedIOBase]] = {  # magic → opener of a compressed stream
    b"\x1f\x8b": gzip.open,
    b"BZh": bz2.open,
    b"\xfd7zXZ\x00": lzma.open,
}

Files = dict[str, bytes]


def _not_below_root() -> InvalidRequest:
    return InvalidRequest("directory", "is not a tariff directory below the server's tariff root (give a path "
                                       "relative to the root; no '..', no symbolic links)")  # fmt: skip


def _too_large(field: str, max_bytes: int) -> InvalidRequest:
    return InvalidRequest(field, f"the tariff is larger than {max_bytes} bytes (tariff_upload_max_bytes)")


def below_root(root: Path, directory: str, max_bytes: int) -> Files:
    """The tariff files of ``directory`` (relative to ``root``, or absolute inside it), read without following links."""
    if not directory or len(directory) > MAX_PATH_CHARS or "\x00" in directory:
        raise _not_below_root()
    try:
        root = root.resolve()
        path = PurePosixPath(directory)
        if path.is_absolute():
            path = path.relative_to(root)
    except (OSError, ValueError):
        raise _not_below_root() from None
    if ".." in path.parts:
        raise _not_below_root()
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        raise _not_below_root() from None
    try:
        for part in path.parts:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        return _read_folder(folder, max_bytes)
    except OSError:
        raise _not_below_root() from None
    finally:
        os.close(folder)


def _read_folder(folder: int, max_bytes: int) -> Files:
    files: Files = {}
    for name in TARIFF_FILES:
        try:
            descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        except FileNotFoundError:
            continue
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise _not_below_root()
            files[name] = handle.read(max_bytes + 1)
        if sum(map(len, files.values())) > max_bytes:
            raise _too_large("directory", max_bytes)
    if not files:
        raise _not_below_root()
    return files


def uploaded(files: Mapping[str, bytes], max_bytes: int) -> Files:
    """The files of a request's ``files`` map, checked: known names only, ``max_bytes`` in all."""
    for name in files:
        if name not in TARIFF_FILES:
            raise InvalidRequest(f"files[{name[:40]!r}]", f"is not a tariff file (one of {', '.join(TARIFF_FILES)})")
    if sum(map(len, files.values())) > max_bytes:
        raise _too_large("files", max_bytes)
    return dict(files)


def unpacked_archive(data: bytes, max_bytes: int) -> Files:
    """The tariff files in a zip or (compressed) tar archive; other members are skipped, links refused."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _from_zip(data, max_bytes)
    for magic, opener in _COMPRESSED.items():
        if data.startswith(magic):
            limit = _UNPACK_HEADROOM * max_bytes + (1 << 20)
            try:
                with opener(io.BytesIO(data)) as stream:
                    data = stream.read(limit + 1)
            except (OSError, EOFError, lzma.LZMAError) as error:
                raise InvalidRequest("archive", f"cannot be decompressed: {error}") from None
            if len(data) > limit:
                raise _too_large("archive", max_bytes)
            break
    return _from_tar(data, max_bytes)


def _member_name(name: str) -> str | None:
    """The tariff file a member stands for (``rates.csv`` or ``folder/rates.csv``), None for another file."""
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts or len(parts) > 2:
        raise InvalidRequest("archive", f"member {name[:80]!r}: files belong at the top or in one folder")
    return parts[-1] if parts and parts[-1] in TARIFF_FILES else None


def _add(files: Files, name: str, content: bytes, max_bytes: int) -> None:
    if name in files:
        raise InvalidRequest("archive", f"holds {name} twice")
    files[name] = content
    if sum(map(len, files.values())) > max_bytes:
        raise _too_large("archive", max_bytes)


def _from_zip(data: bytes, max_bytes: int) -> Files:
    files: Files = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise InvalidRequest("archive", f"has more than {MAX_ARCHIVE_MEMBERS} members")
            for member in members:
                name = _member_name(member.filename)
                if member.is_dir() or name is None:
                    continue
                kind = stat.S_IFMT(member.external_attr >> 16)  # 0: no Unix mode recorded, a plain file
                if kind not in (0, stat.S_IFREG):
                    raise InvalidRequest("archive", f"member {member.filename[:80]!r} is not a regular file")
                with archive.open(member) as handle:
                    _add(files, name, handle.read(max_bytes + 1), max_bytes)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as error:
        raise InvalidRequest("archive", f"is not a readable zip archive: {error}") from None
    return _found(files)


def _from_tar(data: bytes, max_bytes: int) -> Files:
    files: Files = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_ARCHIVE_MEMBERS:
                    raise InvalidRequest("archive", f"has more than {MAX_ARCHIVE_MEMBERS} members")
                name = _member_name(member.name)
                if member.isdir() or name is None:
                    continue
                if not member.isreg():
                    raise InvalidRequest("archive", f"member {member.name[:80]!r} is not a regular file")
                if member.size > max_bytes:
                    raise _too_large("archive", max_bytes)
                handle = archive.extractfile(member)
                _add(files, name, handle.read(max_bytes + 1) if handle else b"", max_bytes)
    except tarfile.TarError as error:
        raise InvalidRequest("archive", f"is neither a zip nor a tar archive: {error}") from None
    return _found(files)


def _found(files: Files) -> Files:
    if not files:
        raise InvalidRequest("archive", f"holds none of the tariff files ({', '.join(TARIFF_FILES)})")
    return files


@contextlib.contextmanager
def unpacked(files: Mapping[str, bytes]) -> Iterator[Path]:
    """A private temporary directory holding ``files``, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="occ-tariff-") as directory:
        for name, content in files.items():
            (Path(directory) / name).write_bytes(content)
        yield Path(directory)


def local_files(directory: Path) -> Files:
    """The tariff files of a local directory, as a client uploads them (``occ tariff load``)."""
    return {name: (directory / name).read_bytes() for name in TARIFF_FILES if (directory / name).is_file()}

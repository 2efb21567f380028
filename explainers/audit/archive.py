"""Read an uploaded zip entirely in memory, refusing hostile archives with a message a person can act on.

Nothing is ever written to disk. Every entry is checked from the central directory first (paths,
links, passwords, nested archives, declared sizes) before a byte is decompressed, and then the
actual output is counted while it is read, so a header that lies is stopped at the limit.
"""

from __future__ import annotations

import io
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import NoReturn

from .errors import DatasetError

CHUNK = 1 << 20  # bytes decompressed per read
RATIO_FLOOR = 1 << 20  # small members may compress well (blank images); only larger ones are ratio-checked
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst")
ARCHIVE_MAGIC = {
    b"PK\x03\x04": "zip",
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"7z\xbc\xaf'\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
    b"\x28\xb5\x2f\xfd": "zstd",
}
# Only these methods bound their output per read: zipfile hands bzip2/lzma a whole compressed chunk
# with no output cap, so a few hundred bytes can become gigabytes before any count could stop it.
READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError,
               ValueError, struct.error)  # ValueError: bad UTF-8 names, bad offsets
DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ZipLimits:
    max_members: int = 20_000  # files in the archive
    max_total_bytes: int = 1 << 30  # uncompressed, all members together
    max_member_bytes: int = 64 << 20  # uncompressed, one member
    max_ratio: float = 200.0  # uncompressed / compressed, per member above 1 MB uncompressed


def read_zip(data: bytes, limits: ZipLimits = ZipLimits()) -> dict[str, bytes]:
    """Every regular file in the zip, by its cleaned relative path ('cat/1.jpg'), in archive order."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except READ_ERRORS as error:
        raise DatasetError(
            f"This file is not a readable zip archive ({str(error) or type(error).__name__}). "
            "Check that it is a .zip and that the upload was complete."
        ) from None
    with archive:
        if len(infos) > limits.max_members:
            raise DatasetError(f"The zip is refused: it holds {len(infos):,} entries, "
                               f"more than the limit of {limits.max_members:,}.")
        members = _checked_members(infos, limits)
        if not members:
            raise DatasetError("The zip holds no files.")
        files: dict[str, bytes] = {}
        total = 0
        for name, info in members:
            files[name] = _read_member(archive, info, limits, total)
            total += len(files[name])
        return files


def _checked_members(infos: list[zipfile.ZipInfo], limits: ZipLimits) -> list[tuple[str, zipfile.ZipInfo]]:
    """The regular files to read, by cleaned name; refuses the archive on the first hostile entry."""
    members: list[tuple[str, zipfile.ZipInfo]] = []
    seen: dict[str, str] = {}
    declared = 0
    for info in infos:
        raw = info.filename
        name = _clean(raw)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            _refuse(raw, "is a symbolic link; links are not followed, so put the file itself in the zip")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            _refuse(raw, "is a special file (a device, fifo or socket), not a regular file")
        if info.is_dir() or kind == stat.S_IFDIR or not name or _is_junk(name):
            continue
        if info.flag_bits & 0x1:
            _refuse(raw, "is password-protected; zip the files again without a password")
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            _refuse(raw, "is itself an archive; nested archives are not read; unpack it first")
        if info.compress_type not in READABLE_METHODS:
            _refuse(raw, f"uses compression method {info.compress_type}, which is not read; "
                         "zip the files again with standard (deflate) compression")
        if name in seen:
            _refuse(raw, f"appears twice (also as {seen[name]!r})")
        seen[name] = raw
        if info.file_size > limits.max_member_bytes:
            _refuse(raw, f"unpacks to {_size(info.file_size)}, more than the limit of "
                         f"{_size(limits.max_member_bytes)} for one file")
        _check_ratio(raw, info.file_size, info.compress_size, limits)
        declared += info.file_size
        if declared > limits.max_total_bytes:
            _refuse(raw, f"brings the files to {_size(declared)} unpacked, more than the limit of "
                         f"{_size(limits.max_total_bytes)} for the whole zip")
        members.append((name, info))
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, total: int) -> bytes:
    """The member's bytes, counted chunk by chunk so a header that lies is stopped at the limit."""
    raw = info.filename
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                if not chunks:
                    _check_magic(raw, chunk)
                chunks.append(chunk)
                size += len(chunk)
                if size > limits.max_member_bytes:
                    _refuse(raw, f"unpacks to more than {_size(limits.max_member_bytes)}, the limit for "
                                 "one file (its header understates its size)")
                if total + size > limits.max_total_bytes:
                    _refuse(raw, f"brings the files past {_size(limits.max_total_bytes)} unpacked, the limit "
                                 "for the whole zip (its header understates its size)")
                _check_ratio(raw, size, info.compress_size, limits)
    except DatasetError:
        raise
    except READ_ERRORS as error:
        _refuse(raw, f"cannot be read ({str(error) or type(error).__name__}); the zip may be damaged")
    return b"".join(chunks)


def _clean(raw: str) -> str:
    """The member's relative path with '/' separators and no '.' or empty parts; refuses escapes."""
    path = raw.replace("\\", "/")
    if path.startswith("/") or DRIVE.match(path):
        _refuse(raw, "is an absolute path, which points outside the archive")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        _refuse(raw, "points outside the archive")
    return "/".join(parts)


def _is_junk(name: str) -> bool:
    """Files that operating systems add behind the user's back (Finder metadata, thumbnail caches)."""
    base = name.rsplit("/", 1)[-1]
    return (name.startswith("__MACOSX/") or base == ".DS_Store" or base.startswith("._")
            or base.lower() == "thumbs.db")


def _check_ratio(raw: str, size: int, compressed: int, limits: ZipLimits) -> None:
    if size <= RATIO_FLOOR:
        return
    ratio = size / compressed if compressed else float("inf")
    if ratio > limits.max_ratio:
        _refuse(raw, f"is compressed {ratio:,.0f} to 1, more than the limit of {limits.max_ratio:,.0f} "
                     "to 1; this looks like a zip bomb")


def _check_magic(raw: str, head: bytes) -> None:
    kind = next((kind for magic, kind in ARCHIVE_MAGIC.items() if head.startswith(magic)), None)
    if kind is None and head[257:262] == b"ustar":
        kind = "tar"
    if kind:
        _refuse(raw, f"is itself an archive ({kind}); nested archives are not read; unpack it first")


def _size(n: float) -> str:
    """1536 -> '1.5 KB': binary units, as file managers show them."""
    unit = "bytes"
    for bigger in ("KB", "MB", "GB"):
        if n < 1024:
            break
        n, unit = n / 1024, bigger
    text = f"{n:,.0f}" if unit == "bytes" else f"{n:,.1f}".removesuffix(".0")
    return f"{text} {unit}"


def _refuse(raw: str, what: str) -> NoReturn:
    raise DatasetError(f"The zip is refused: {raw!r} {what}.")

"""read_zip: a good archive comes back byte for byte; every hostile one is refused by name."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import struct
import tarfile
import warnings
import zipfile

import pytest

from explainers.audit import archive
from explainers.audit.archive import ZipLimits, read_zip
from explainers.audit.errors import DatasetError

MB = 1 << 20


def make_zip(*entries, method=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name or ZipInfo, bytes) entries, built in memory in the given order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in entries:
            if isinstance(name, zipfile.ZipInfo):
                zf.writestr(name, data, compress_type=method)
            else:
                zf.writestr(name, data)
    return buffer.getvalue()


def with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def patch_headers(data: bytes, local_offset: int, central_offset: int, fmt: str, value: int) -> bytes:
    """Overwrite one field in the (single) member's local and central headers."""
    patched = bytearray(data)
    struct.pack_into(fmt, patched, data.find(b"PK\x03\x04") + local_offset, value)
    struct.pack_into(fmt, patched, data.rfind(b"PK\x01\x02") + central_offset, value)
    return bytes(patched)


def refused(data: bytes, limits: ZipLimits = ZipLimits()) -> str:
    with pytest.raises(DatasetError) as caught:
        read_zip(data, limits)
    return str(caught.value)


# --- what comes back -------------------------------------------------------------------------------

def test_good_zip_round_trips_in_order_and_skips_junk():
    photo = bytes(range(256)) * 40
    data = make_zip(
        ("cat/", b""),
        ("cat/1.jpg", photo),
        ("__MACOSX/cat/._1.jpg", b"resource fork"),
        ("cat/.DS_Store", b"finder"),
        ("dog/sub/deep/2.png", b"\x89PNG\r\n\x1a\n" + photo[::-1]),
        ("dog/._2.png", b"apple double"),
        ("Thumbs.db", b"windows"),
        ("dog/thumbs.db", b"windows"),
        ("empty.txt", b""),
        ("a.txt", b"last"),
    )
    files = read_zip(data)
    assert list(files) == ["cat/1.jpg", "dog/sub/deep/2.png", "empty.txt", "a.txt"]
    assert files["cat/1.jpg"] == photo
    assert files["dog/sub/deep/2.png"] == b"\x89PNG\r\n\x1a\n" + photo[::-1]
    assert files["empty.txt"] == b"" and files["a.txt"] == b"last"


def test_stored_members_are_read_too():
    assert read_zip(make_zip(("x.bin", b"\0\1\2"), method=zipfile.ZIP_STORED)) == {"x.bin": b"\0\1\2"}


def test_names_are_cleaned_but_not_stripped_of_their_folder():
    data = make_zip(("./top/a.txt", b"a"), ("top//b.txt", b"b"), ("top\\c.txt", b"c"))
    assert list(read_zip(data)) == ["top/a.txt", "top/b.txt", "top/c.txt"]


def test_a_small_member_may_compress_very_well():
    assert read_zip(make_zip(("blank.bmp", bytes(MB))))["blank.bmp"] == bytes(MB)


# --- not a zip -------------------------------------------------------------------------------------

GOOD = make_zip(("cat/1.jpg", bytes(range(256)) * 100), ("cat/2.jpg", b"two" * 500))


@pytest.mark.parametrize("data", [b"", b"hello, world", b"\x89PNG\r\n\x1a\n" + bytes(100),
                                  GOOD[: len(GOOD) // 2], GOOD[:-10]],
                         ids=["empty", "text", "png", "truncated-half", "truncated-end"])
def test_not_a_zip(data):
    assert "This file is not a readable zip archive" in refused(data)


def test_damaged_member_data_names_the_member():
    data = bytearray(make_zip(("x.txt", bytes(range(256)) * 200)))
    start = data.find(b"PK\x03\x04") + 30 + len("x.txt")
    data[start + 40: start + 60] = bytes(20)  # damage the deflate stream
    message = refused(bytes(data))
    assert "'x.txt'" in message and "cannot be read" in message


# --- paths, links, special files -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil.txt", "a/../../etc/passwd", "a/../b.txt", "..\\x.txt",
                                  "a\\..\\..\\x.txt", "ok/../"])
def test_paths_that_climb_out_are_refused(name):
    message = refused(make_zip(("fine.txt", b"ok"), (name, b"x")))
    assert repr(name) in message and "points outside the archive" in message


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/x.txt", "C:\\x.txt", "c:x.txt", "\\\\server\\share\\x"])
def test_absolute_paths_are_refused(name):
    message = refused(make_zip((name, b"x")))
    assert repr(name) in message and "absolute path" in message


def test_symlinks_are_refused():
    message = refused(make_zip(("fine.txt", b"ok"), (with_mode("cat/1.jpg", stat.S_IFLNK | 0o777), b"/etc/passwd")))
    assert "'cat/1.jpg'" in message and "symbolic link" in message


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK])
def test_special_files_are_refused(kind):
    message = refused(make_zip((with_mode("dev/thing", kind | 0o644), b"")))
    assert "'dev/thing'" in message and "special file" in message


def test_unix_modes_of_regular_files_and_folders_are_fine():
    data = make_zip((with_mode("d", stat.S_IFDIR | 0o755), b""), (with_mode("d/f.txt", stat.S_IFREG | 0o644), b"f"))
    assert read_zip(data) == {"d/f.txt": b"f"}


# --- nested archives, passwords, compression methods ----------------------------------------------

@pytest.mark.parametrize("name", ["inner.zip", "x.tar.gz", "A.RAR", "b.7z", "c.tgz", "d.zst", "e.tar", "f.xz"])
def test_nested_archive_by_name(name):
    message = refused(make_zip(("ok.txt", b"ok"), (f"data/{name}", b"not really an archive")))
    assert f"'data/{name}'" in message and "nested archives are not read; unpack it first" in message


def _tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        payload = b"hidden"
        info = tarfile.TarInfo("hidden.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.mark.parametrize("payload, kind", [
    (make_zip(("inner.txt", b"x")), "zip"),
    (gzip.compress(b"x" * 100), "gzip"),
    (bz2.compress(b"x" * 100), "bzip2"),
    (lzma.compress(b"x" * 100), "xz"),
    (b"7z\xbc\xaf'\x1c" + bytes(50), "7z"),
    (b"Rar!\x1a\x07\x00" + bytes(50), "rar"),
    (b"\x28\xb5\x2f\xfd" + bytes(50), "zstd"),
    (_tar(), "tar"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_nested_archive_by_magic_under_an_innocent_name(payload, kind):
    message = refused(make_zip(("cat/photo.jpg", payload)))
    assert "'cat/photo.jpg'" in message and f"({kind})" in message and "unpack it first" in message


def test_password_protected_members_are_refused():
    data = patch_headers(make_zip(("secret.jpg", b"x" * 100)), 6, 8, "<H", 0x1)
    message = refused(data)
    assert "'secret.jpg'" in message and "password-protected" in message


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compression_without_an_output_bound_is_refused(method):
    # zipfile decompresses a whole bzip2/lzma chunk at once: 250 bytes may become gigabytes
    message = refused(make_zip(("x.jpg", b"x" * 100), method=method))
    assert "'x.jpg'" in message and f"compression method {method}" in message and "deflate" in message


# --- sizes -----------------------------------------------------------------------------------------

def test_too_many_members():
    data = make_zip(*[(f"f{i}.txt", b"x") for i in range(4)])
    message = refused(data, ZipLimits(max_members=3))
    assert "4 entries" in message and "limit of 3" in message
    assert len(read_zip(data, ZipLimits(max_members=4))) == 4


def test_declared_total_too_big():
    data = make_zip(("a.txt", b"a" * 400), ("b.txt", b"b" * 400), ("c.txt", b"c" * 400))
    message = refused(data, ZipLimits(max_total_bytes=1000, max_member_bytes=600))
    assert "'c.txt'" in message and "1.2 KB" in message and "1,000 bytes" in message


def test_one_member_too_big():
    message = refused(make_zip(("ok.txt", b"ok"), ("big.txt", b"x" * 700)), ZipLimits(max_member_bytes=600))
    assert "'big.txt'" in message and "700 bytes" in message and "600 bytes" in message


def test_ratio_bomb_is_refused_before_anything_is_decompressed(monkeypatch):
    data = make_zip(("cat/1.jpg", b"ok"), ("cat/2.jpg", bytes(20 * MB)))
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("decompressed before checking"))
    message = refused(data)
    assert "'cat/2.jpg'" in message and "zip bomb" in message and "limit of 200 to 1" in message


def test_header_that_understates_its_size_is_not_decompressed_in_full():
    # 20 MB of zeros declared as 100 bytes: zipfile stops at the declared size and the CRC fails
    data = patch_headers(make_zip(("cat/1.jpg", bytes(20 * MB))), 22, 24, "<I", 100)
    message = refused(data)
    assert "'cat/1.jpg'" in message and "cannot be read" in message


class EndlessStream:
    """A member whose decompressor never stops, whatever its header says."""

    def __init__(self):
        self.given = 0

    def read(self, n=-1):
        self.given += n
        return b"x" * n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("limits, words", [
    (ZipLimits(max_member_bytes=3 * MB, max_ratio=float("inf")), ["3 MB", "limit for one file", "understates"]),
    (ZipLimits(max_total_bytes=3 * MB, max_ratio=float("inf")), ["3 MB", "whole zip", "understates"]),
    (ZipLimits(), ["zip bomb", "limit of 200 to 1"]),
], ids=["member", "total", "ratio"])
def test_actual_bytes_are_counted_and_reading_stops_at_the_limit(monkeypatch, limits, words):
    data, stream = make_zip(("cat/1.jpg", b"x" * 10_000)), EndlessStream()
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info: stream)
    message = refused(data, limits)
    assert "'cat/1.jpg'" in message and all(word in message for word in words)
    assert stream.given <= 4 * archive.CHUNK


# --- names -----------------------------------------------------------------------------------------

def test_duplicate_names_after_cleaning():
    message = refused(make_zip(("a/b.txt", b"1"), ("./a/b.txt", b"2")))
    assert "'./a/b.txt'" in message and "appears twice" in message and "'a/b.txt'" in message


def test_exact_duplicate_names():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns when writing a duplicate name
        data = make_zip(("a.txt", b"1"), ("a.txt", b"2"))
    assert "'a.txt' appears twice" in refused(data)


@pytest.mark.parametrize("entries", [
    (),
    (("cat/", b""), ("__MACOSX/._x", b"x"), (".DS_Store", b"x"), ("dog/Thumbs.db", b"x")),
], ids=["empty", "only-folders-and-junk"])
def test_no_files(entries):
    assert refused(make_zip(*entries)) == "The zip holds no files."

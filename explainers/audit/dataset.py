"""Read a labelled dataset: a folder or zip with one subfolder per class, or a CSV / JSONL manifest.

Images: `DATA/<class>/<file>` (the folder name is a class name or index), or a manifest with
`path,label[,group ...]` whose paths are relative to the manifest. A zip holds either layout; a
`manifest.csv` or `manifest.jsonl` at its top (or in its one top folder) wins over folders.
Texts: a manifest with `text,label[,group ...]`. Every column besides the known ones is a group.

Nothing is decoded here: an item knows where its bytes are, and a bad item fails later, alone,
when it is predicted. Problems with the dataset as a whole raise DatasetError.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

from .archive import ZipLimits, read_zip
from .errors import DatasetError

TASKS = ("image", "text", "clip")
MANIFEST_SUFFIXES = {".csv", ".jsonl"}
MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
MAX_MANIFEST_BYTES = 256 << 20
MAX_ITEMS = 1_000_000
RESERVED = {"path", "text", "label"}


@dataclass(frozen=True)
class Item:
    """One labelled example: `input` names it (a relative path, or "row N" for a text)."""

    input: str
    label: str
    groups: tuple[tuple[str, str], ...] = ()
    text: str | None = None

    def as_row(self) -> dict:
        return {"input": self.input, "label": self.label, "groups": dict(self.groups), "text": self.text}


@dataclass(frozen=True)
class Dataset:
    task: str
    items: tuple[Item, ...]
    source: Source
    group_columns: tuple[str, ...]
    sha256: str  # of the manifest file, or of the "path<TAB>label" listing of a folder layout
    origin: str  # what was read, for the report: "folder DATA (class subfolders)"

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({item.label for item in self.items}))


@dataclass(frozen=True)
class Source:
    """Where image bytes live: a folder on disk (read on demand), a zip file on disk, or bytes in memory."""

    root: str | None = None
    zip_path: str | None = None
    members: dict[str, bytes] | None = field(default=None, compare=False, repr=False)
    prefix: str = ""  # a manifest's folder inside the archive

    def read(self, relative: str) -> bytes:
        name = _clean(relative)
        if self.root is not None:
            return (Path(self.root) / name).read_bytes()
        key = f"{self.prefix}{name}"
        members = self.members if self.members is not None else _zip_members(self.zip_path)
        if key not in members:
            raise FileNotFoundError(relative)
        return members[key]

    def without_bytes(self) -> Source:
        """The same source for a worker on another machine: zip members are reread from the zip's path."""
        return Source(self.root, self.zip_path, None if self.zip_path else self.members, self.prefix)


@lru_cache(maxsize=2)
def _zip_members(path: str) -> dict[str, bytes]:
    """A worker's copy of a zip dataset, read once per process."""
    return read_zip(Path(path).read_bytes())


def load_dataset(path: str | Path, task: str, limits: ZipLimits = ZipLimits()) -> Dataset:
    """A dataset on disk: a folder, a .zip, or a .csv / .jsonl manifest."""
    _check_task(task)
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder.")
    if path.is_dir():
        if task == "text":
            raise DatasetError(f"{path} is a folder; texts come as a CSV or JSONL file with text,label columns.")
        return _from_folders(task, _folder_listing(path), Source(root=str(path)), f"folder {path}")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        members = read_zip(path.read_bytes(), limits)
        return _from_zip(task, members, str(path), f"zip {path.name}")
    if suffix in MANIFEST_SUFFIXES:
        data = _read_manifest_bytes(path)
        return _from_manifest(task, data, suffix, Source(root=str(path.parent)), f"manifest {path}")
    raise DatasetError(f"{path.name}: give a folder, a .zip, or a .csv / .jsonl manifest, not a {suffix or 'file without suffix'}.")


def dataset_from_upload(name: str, data: bytes, task: str, limits: ZipLimits = ZipLimits()) -> Dataset:
    """A dataset uploaded in the page: a zip or a manifest, read in memory only."""
    _check_task(task)
    suffix = PurePosixPath(name).suffix.lower()
    if not data:
        raise DatasetError(f"{name} is empty (0 bytes).")
    if suffix == ".zip":
        return _from_zip(task, read_zip(data, limits), None, f"zip {name}")
    if suffix in MANIFEST_SUFFIXES:
        if task != "text":
            raise DatasetError("A manifest alone has no images: upload a zip holding the images (and the manifest).")
        return _from_manifest(task, data, suffix, Source(members={}), f"manifest {name}")
    raise DatasetError(f"{name}: upload a .zip, or for texts a .csv / .jsonl file.")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise DatasetError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")


def _from_zip(task: str, members: dict[str, bytes], zip_path: str | None, origin: str) -> Dataset:
    tops = {name.split("/", 1)[0] for name in members}
    prefix = f"{next(iter(tops))}/" if len(tops) == 1 and all("/" in n for n in members) else ""
    for manifest in MANIFEST_NAMES:
        if f"{prefix}{manifest}" in members:
            source = Source(zip_path=zip_path, members=members, prefix=prefix)
            data = members[f"{prefix}{manifest}"]
            return _from_manifest(task, data, Path(manifest).suffix, source, f"{origin}, {manifest}")
    if task == "text":
        raise DatasetError("The zip holds no manifest.csv or manifest.jsonl with text,label columns.")
    listing = [name[len(prefix):] for name in members]
    return _from_folders(task, listing, Source(zip_path=zip_path, members=members, prefix=prefix), f"{origin} (class folders)")


def _folder_listing(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            continue  # a link may point anywhere on the machine
        if path.is_file():
            found.append(path.relative_to(root).as_posix())
            if len(found) > MAX_ITEMS:
                raise DatasetError(f"{root} holds more than {MAX_ITEMS:,} files.")
    return found


def _from_folders(task: str, listing: list[str], source: Source, origin: str) -> Dataset:
    """Class subfolders: `<class>/<file>` (deeper files keep their class: the top folder)."""
    items = []
    for name in sorted(listing):
        parts = PurePosixPath(name).parts
        if len(parts) < 2 or parts[-1].startswith("."):
            continue  # files beside the class folders (a README, a manifest) are not items
        items.append(Item(name, parts[0]))  # a file that is no image is skipped later, with its reason
    if not items:
        raise DatasetError(
            "No class folders with images found: put each class's images in a folder named after the class "
            "(e.g. tabby/1.jpg), or give a manifest with path,label columns."
        )
    listing_text = "".join(f"{item.input}\t{item.label}\n" for item in items)
    digest = hashlib.sha256(listing_text.encode()).hexdigest()
    return Dataset(task, tuple(items), source, (), digest, origin)


def _read_manifest_bytes(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise DatasetError(f"{path.name} is {size / 2**20:.0f} MB; a manifest may have at most {MAX_MANIFEST_BYTES >> 20} MB.")
    return path.read_bytes()


def _from_manifest(task: str, data: bytes, suffix: str, source: Source, origin: str) -> Dataset:
    columns, rows = _manifest_rows(data, suffix)
    key = "text" if task == "text" else "path"
    unit = "line" if suffix == ".jsonl" else "row"
    if not rows:
        raise DatasetError("The manifest has no rows.")
    missing = [c for c in (key, "label") if c not in columns]
    if missing:
        need = f"{key},label"
        raise DatasetError(f"The manifest needs the columns {need}; it has {', '.join(columns) or 'none'} "
                           f"(missing: {', '.join(missing)}).")
    groups = tuple(c for c in columns if c not in RESERVED)
    items, seen = [], set()
    for number, row in rows:
        value, label = row.get(key), row.get("label")
        if value is None or str(value).strip() == "" or label is None or str(label).strip() == "":
            raise DatasetError(f"{unit.capitalize()} {number} of the manifest has no {key if not value else 'label'}.")
        name = f"{unit} {number}" if task == "text" else str(value).strip()
        if name in seen:
            raise DatasetError(f"The manifest lists {name!r} twice ({unit} {number}).")
        seen.add(name)
        item_groups = tuple((g, "" if row.get(g) is None else str(row.get(g)).strip()) for g in groups)
        items.append(Item(name, str(label).strip(), item_groups, str(value) if task == "text" else None))
    return Dataset(task, tuple(items), source, groups, hashlib.sha256(data).hexdigest(), origin)


def _manifest_rows(data: bytes, suffix: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """The columns, and (number, row) pairs: a JSONL's line numbers, a CSV's rows as a spreadsheet counts them."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(f"The manifest is not UTF-8 text (byte {error.start}); save it as UTF-8.") from None
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"Line {number} of the manifest is not JSON: {error.msg}.") from None
            if not isinstance(row, dict):
                raise DatasetError(f"Line {number} of the manifest is not a JSON object.")
            rows.append((number, row))
            _check_count(len(rows))
        return list(dict.fromkeys(k for _, row in rows for k in row)), rows
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = []
        for number, row in enumerate(reader, 2):  # as a spreadsheet numbers them: the header is row 1
            if None in row:
                raise DatasetError(f"Row {number} of the manifest has more values than the header has columns.")
            if any(v not in (None, "") for v in row.values()):
                rows.append((number, {k.strip(): v for k, v in row.items()}))
                _check_count(len(rows))
    except csv.Error as error:
        raise DatasetError(f"The manifest is not valid CSV: {error}.") from None
    return [c.strip() for c in reader.fieldnames or ()], rows


def _check_count(count: int) -> None:
    if count > MAX_ITEMS:
        raise DatasetError(f"The manifest has more than {MAX_ITEMS:,} rows.")


def _clean(relative: str) -> str:
    """A manifest path, checked: relative and inside the dataset (no '..', no absolute paths)."""
    name = relative.replace("\\", "/").strip()
    parts = PurePosixPath(name).parts
    if not name or name.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise DatasetError(f"{relative!r} points outside the dataset; paths must be relative and inside it.")
    return name

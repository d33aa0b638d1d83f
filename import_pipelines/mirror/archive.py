"""Id-independent archives of a database: export to ``.tar.gz``, import with the mirror's machinery.

An archive holds ``index.json`` (the manifest) and one file per table with exactly the rows the
mirror would stream: plain columns, and for every reference the natural key of the referenced
row instead of its id, so the archive can be loaded into any database of the same application.

Table files use PostgreSQL's *text* COPY format: it is what ``COPY ... TO STDOUT`` produces and
``COPY ... FROM STDIN`` parses fastest, it keeps NULL apart from the empty string (``\\N``), and
one line is one row (newlines inside values are escaped), so files split into batches at line
ends and checksums are stable. CSV would need quote-aware parsing to split and reads the same
values back only with matching options; the binary format is faster to parse but ties the file
to the exact column types of the exporting server (an ``integer`` file does not load into a
``bigint`` column), which defeats an archive meant to move between databases.

Import never extracts by member name: every member is checked first (no absolute paths, no
``..``, no links, devices or fifos), regular files are streamed to temporary files of our own
naming while their sha256 is computed, and every checksum must match the manifest before a
single row is loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
import psycopg
from psycopg import sql

from import_pipelines.db.connect import connect, connection
from import_pipelines.db.introspect import SchemaInfo, describe_schema
from import_pipelines.mirror.copy import DEFAULT_BATCH_ROWS, DEFAULT_WORKERS
from import_pipelines.engine.graph import Reference
from import_pipelines.mirror.merge import Loader, ProgressCallback, batched_rows
from import_pipelines.mirror.overrides import NaturalKeyOverrides, load_overrides
from import_pipelines.mirror.plan import KeyModel, LoadPlan, TablePlan, build_plan, check_override_keys
from import_pipelines.mirror.report import MirrorError, MirrorReport, Mode

ARCHIVE_FORMAT = "import_pipelines.mirror/1"
DATA_FORMAT = "postgresql-text"
INDEX_NAME = "index.json"
_WRITE_ROWS = 2000


class ArchiveError(MirrorError):
    """The archive is unsafe, damaged or does not fit the target; the message names the member."""


@dataclass(frozen=True)
class ManifestColumn:
    """One column of a table file: a plain column, a reference's presence flag or key atom."""

    name: str
    type: str
    kind: str  # "column" | "present" | "key"


@dataclass(frozen=True)
class ManifestReference:
    """A reference of an archived table, carried as the referenced row's natural key."""

    columns: list[str]
    ref_table: str
    deferred: bool


@dataclass(frozen=True)
class ManifestTable:
    """One table file of the archive."""

    name: str
    file: str
    rows: int
    sha256: str
    bytes: int
    natural_key: list[str]
    columns: list[ManifestColumn]
    references: list[ManifestReference] = field(default_factory=list)
    key_columns: list[str] = field(default_factory=list)

    @property
    def data_columns(self) -> set[str]:
        """Target columns the file provides (plain columns and reference columns)."""
        names = {column.name for column in self.columns if column.kind == "column"}
        return names | {c for ref in self.references for c in ref.columns}


@dataclass(frozen=True)
class Manifest:
    """``index.json``: tables in load order, their columns, row counts and checksums."""

    format: str
    created_at: str
    schema: str
    schema_fingerprint: str
    data_format: str
    tables: list[ManifestTable]
    deferred_references: list[str] = field(default_factory=list)

    def table(self, name: str) -> ManifestTable:
        """The entry of table ``name``."""
        for entry in self.tables:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def to_json(self) -> str:
        """The manifest as pretty JSON text."""
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse and validate ``index.json``; ArchiveError on anything malformed."""
        try:
            data = json.loads(text)
            if data.get("format") != ARCHIVE_FORMAT:
                raise ArchiveError(f"{INDEX_NAME}: unknown archive format {data.get('format')!r} "
                                   f"(expected {ARCHIVE_FORMAT})")
            if data.get("data_format") != DATA_FORMAT:
                raise ArchiveError(f"{INDEX_NAME}: unknown data format {data.get('data_format')!r}")
            tables = [ManifestTable(
                name=str(t["name"]), file=str(t["file"]), rows=int(t["rows"]), sha256=str(t["sha256"]),
                bytes=int(t["bytes"]), natural_key=[str(n) for n in t["natural_key"]],
                columns=[ManifestColumn(str(c["name"]), str(c["type"]), str(c["kind"])) for c in t["columns"]],
                references=[ManifestReference([str(x) for x in r["columns"]], str(r["ref_table"]), bool(r["deferred"]))
                            for r in t.get("references", [])],
                key_columns=[str(c) for c in t.get("key_columns", [])])
                for t in data["tables"]]
            return cls(format=data["format"], created_at=str(data["created_at"]), schema=str(data["schema"]),
                       schema_fingerprint=str(data["schema_fingerprint"]), data_format=data["data_format"],
                       tables=tables, deferred_references=[str(d) for d in data.get("deferred_references", [])])
        except ArchiveError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArchiveError(f"{INDEX_NAME} is malformed: {exc!r}") from None


def _manifest_columns(plan: TablePlan) -> list[ManifestColumn]:
    kinds = ["column"] * len(plan.plain)
    for group in plan.groups:
        if group.flag_slot is not None:
            kinds.append("present")
        kinds.extend("key" for _ in group.atom_slots)
    return [ManifestColumn(column.name, column.data_type, kind) for column, kind in zip(plan.layout, kinds,
                                                                                       strict=True)]


def _file_name(index: int, table: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", table)[:60]
    return f"tables/{index:03d}_{safe}.copy"


def export_archive(source_url: str, path: str | Path, *, tables: Iterable[str] | None = None,
                   overrides: str | Path | Mapping[str, list[str]] | None = None,
                   references: Iterable[Reference] = (), schema: str = "public",
                   compresslevel: int = 6) -> Manifest:
    """Write ``tables`` (default: all) of the source to a ``.tar.gz`` archive at ``path``.

    Reads one consistent snapshot in a read-only session. The archive is written to a temporary
    name and renamed at the end, so ``path`` never holds a half-written archive.
    """
    path = Path(path)
    with connection(source_url, read_only=True, pinned_text=True) as conn:
        info = describe_schema(conn, schema)
        conn.commit()
        plan = build_plan(info, tables=tables, overrides=load_overrides(overrides), references=references)
        check_override_keys(conn, plan, side="source")
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with tempfile.TemporaryDirectory(prefix="mirror-export-") as tmp:
            entries: list[ManifestTable] = []
            with conn.transaction():
                for index, table in enumerate(plan.order):
                    local = Path(tmp) / f"{index}.copy"
                    rows, size, digest = _dump_table(conn, plan=plan, table=table, local=local)
                    tp = plan.tables[table]
                    entries.append(ManifestTable(
                        name=table, file=_file_name(index, table), rows=rows, sha256=digest, bytes=size,
                        natural_key=list(tp.key_atom_names), columns=_manifest_columns(tp),
                        references=[ManifestReference(list(g.columns), g.ref_table, g.deferred) for g in tp.groups],
                        key_columns=list(tp.natural_key)))
            manifest = Manifest(format=ARCHIVE_FORMAT, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                                schema=schema, schema_fingerprint=info.fingerprint(list(plan.order)),
                                data_format=DATA_FORMAT, tables=entries, deferred_references=plan.describe())
            partial = path.with_name(path.name + f".{uuid.uuid4().hex[:8]}.partial")
            try:
                with tarfile.open(partial, "w:gz", compresslevel=compresslevel) as tar:
                    _add_bytes(tar, name=INDEX_NAME, data=manifest.to_json().encode())
                    for index, entry in enumerate(entries):
                        local = Path(tmp) / f"{index}.copy"
                        member = tarfile.TarInfo(entry.file)
                        member.size = entry.bytes
                        member.mode = 0o644
                        member.mtime = int(time.time())
                        with local.open("rb") as handle:
                            tar.addfile(member, handle)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
    return manifest


def _dump_table(conn: psycopg.Connection, *, plan: LoadPlan, table: str, local: Path) -> tuple[int, int, str]:
    digest = hashlib.sha256()
    rows = size = 0
    pending: list[bytes] = []
    query = sql.SQL("COPY ({}) TO STDOUT").format(plan.select_sql(table))
    with local.open("wb") as out, conn.cursor().copy(query) as copy:
        for chunk in copy:
            pending.append(bytes(chunk))
            rows += 1
            if len(pending) >= _WRITE_ROWS:
                data = b"".join(pending)
                out.write(data)
                digest.update(data)
                size += len(data)
                pending = []
        data = b"".join(pending)
        out.write(data)
        digest.update(data)
        size += len(data)
    return rows, size, digest.hexdigest()


def _add_bytes(tar: tarfile.TarFile, *, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = 0o644
    member.mtime = int(time.time())
    tar.addfile(member, io.BytesIO(data))


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse a member that could escape the extraction folder or is not plain data."""
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"archive member {name!r} has an absolute path; refused")
    if ".." in re.split(r"[\\/]+", name):
        raise ArchiveError(f"archive member {name!r} contains '..' (path traversal); refused")
    if member.issym() or member.islnk():
        raise ArchiveError(f"archive member {name!r} is a {'symbolic' if member.issym() else 'hard'} link "
                           f"to {member.linkname!r}; refused")
    if member.ischr() or member.isblk() or member.isfifo():
        raise ArchiveError(f"archive member {name!r} is a device or fifo; refused")
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(f"archive member {name!r} is not a regular file (type {member.type!r}); refused")


def read_archive(path: str | Path, workdir: Path) -> tuple[Manifest, dict[str, Path]]:
    """Check every member, stream the data files into ``workdir`` and verify every checksum.

    Returns the manifest and, per table, the verified local file. Nothing is loaded here, so a
    damaged or tampered archive is refused before the target is touched.
    """
    path = Path(path)
    manifest_bytes: bytes | None = None
    extracted: dict[str, tuple[Path, str]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for number, member in enumerate(tar):
                check_member(member)
                if member.isdir():
                    continue
                handle = tar.extractfile(member)
                assert handle is not None
                if PurePosixPath(member.name).as_posix() == INDEX_NAME:
                    manifest_bytes = handle.read()
                    continue
                if member.name in extracted:
                    raise ArchiveError(f"archive member {member.name!r} appears twice; refused")
                local = workdir / f"member-{number}.copy"
                digest = hashlib.sha256()
                with local.open("wb") as out:
                    while block := handle.read(1 << 20):
                        digest.update(block)
                        out.write(block)
                extracted[member.name] = (local, digest.hexdigest())
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{path} is not a readable .tar.gz archive: {exc}") from exc
    if manifest_bytes is None:
        raise ArchiveError(f"{path} has no {INDEX_NAME}")
    manifest = Manifest.from_json(manifest_bytes)
    listed = {entry.file for entry in manifest.tables}
    unexpected = sorted(set(extracted) - listed)
    if unexpected:
        raise ArchiveError(f"archive member {unexpected[0]!r} is not listed in {INDEX_NAME}; refused")
    files: dict[str, Path] = {}
    for entry in manifest.tables:
        if entry.file not in extracted:
            raise ArchiveError(f"archive member {entry.file!r} (table {entry.name!r}) is missing")
        local, actual = extracted[entry.file]
        if actual != entry.sha256:
            raise ArchiveError(f"checksum mismatch for archive member {entry.file!r} (table {entry.name!r}): "
                               f"{INDEX_NAME} says sha256 {entry.sha256}, the file has sha256 {actual}")
        files[entry.name] = local
    return manifest, files


def import_archive(path: str | Path, target_url: str, *, mode: Mode = "upsert", tables: Iterable[str] | None = None,
                   overrides: str | Path | Mapping[str, list[str]] | None = None,
                   references: Iterable[Reference] = (), schema: str = "public", run_id: str | None = None,
                   batch_rows: int = DEFAULT_BATCH_ROWS, workers: int = DEFAULT_WORKERS,
                   on_progress: ProgressCallback | None = None) -> MirrorReport:
    """Load an archive written by :func:`export_archive` into the target (audit profile ``archive``).

    Same modes, natural-key matching, late seeding, audit rows and concurrent loading of
    independent tables as :func:`mirror`.
    """
    run_id = run_id or uuid.uuid4().hex
    started = time.perf_counter()
    natural_keys = load_overrides(overrides)
    with tempfile.TemporaryDirectory(prefix="mirror-import-") as tmp:
        manifest, files = read_archive(path, Path(tmp))
        names = [entry.name for entry in manifest.tables]
        if tables is not None:
            wanted = list(tables)
            absent = [name for name in wanted if name not in names]
            if absent:
                raise ArchiveError(f"the archive has no table {', '.join(map(repr, absent))}")
            names = [name for name in names if name in wanted]
        with connection(target_url) as target:
            info = describe_schema(target, schema)
            target.commit()
            natural_keys = _with_recorded_keys(info, manifest=manifest, natural_keys=natural_keys, names=names)
            plan = build_plan(info, tables=names, overrides=natural_keys, references=references,
                              available_columns={name: manifest.table(name).data_columns for name in names})
            check_override_keys(target, plan, side="target")
            loader = Loader(target, plan, mode=mode, run_id=run_id, profile="archive", batch_rows=batch_rows,
                            on_progress=on_progress, connect=lambda: connect(target_url))
            if info.fingerprint(list(plan.order)) != manifest.schema_fingerprint:
                loader.report.warnings.append("the target schema differs from the exporting one "
                                              "(schema fingerprint); columns were matched by name")
            try:
                loader.prepare()
                for table in plan.order:
                    loader.loads[table].copy_slots = _slot_order(plan.tables[table], manifest.table(table))

                def load(table: str, conn: psycopg.Connection) -> None:
                    # one line of a text-format COPY file is one row
                    with files[table].open("rb") as handle:
                        loader.load_batches(table, batched_rows(handle, batch_rows), conn=conn)

                loader.load_all(load, workers=workers)
                report = loader.finish()
            finally:
                loader.cleanup()
    report.seconds = time.perf_counter() - started
    return report


def _with_recorded_keys(info: SchemaInfo, *, manifest: Manifest, natural_keys: NaturalKeyOverrides,
                        names: list[str]) -> NaturalKeyOverrides:
    """Explicit overrides, plus the archive's own key for tables the target gives no natural key.

    The export was told (by its overrides) what identifies those rows, so the import uses the
    same columns instead of refusing the table a second time.
    """
    merged = dict(natural_keys)
    keys = KeyModel(info, overrides=natural_keys)
    for name in names:
        entry = manifest.table(name)
        if name in merged or not entry.key_columns or name not in info.tables:
            continue
        try:
            keys.natural_key(name)
        except MirrorError:
            merged[name] = tuple(entry.key_columns)
    return merged


def _slot_order(plan: TablePlan, entry: ManifestTable) -> tuple[int, ...]:
    """Staging slot of each archive column (archives may order plain columns differently)."""
    expected = {column.name: slot for slot, column in enumerate(plan.layout)}
    names = [column.name for column in entry.columns]
    if sorted(names) != sorted(expected):
        extra = sorted(set(names) - set(expected))
        lacking = sorted(set(expected) - set(names))
        raise ArchiveError(f"archive member {entry.file!r} (table {entry.name!r}) does not fit the target table: "
                           f"columns only in the archive {extra}, only in the target {lacking}")
    return tuple(expected[name] for name in names)

"""Archives: id-independent export, verified import, refusal of tampered or unsafe archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from import_pipelines.db import connection
from import_pipelines.mirror import ArchiveError, export_archive, import_archive
from import_pipelines_tests.mirror.schema import OVERRIDES, audit_actions, content, counts, create_schema


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def write_archive(path: Path, files: dict[str, bytes], *, extra: Callable[[tarfile.TarFile], None] | None = None
                  ) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra:
            extra(tar)


def test_export_then_import_into_a_third_database(seeded_source: str, empty_target: str,
                                                  new_database: Callable[[str], str], tmp_path: Path) -> None:
    archive = tmp_path / "copy.tar.gz"
    manifest = export_archive(seeded_source, archive, overrides=OVERRIDES)

    # the manifest: load order, columns, counts, checksums, fingerprint
    order = [table.name for table in manifest.tables]
    assert order.index("users") < order.index("instructors") < order.index("project_members")
    assert order.index("projects") < order.index("events") < order.index("events_tags")
    source_counts = counts(seeded_source)
    assert {table.name: table.rows for table in manifest.tables} == source_counts
    files = members(archive)
    index = json.loads(files["index.json"])
    assert index["schema_fingerprint"] == manifest.schema_fingerprint and index["data_format"] == "postgresql-text"
    assert index["created_at"]
    for table in manifest.tables:
        assert hashlib.sha256(files[table.file]).hexdigest() == table.sha256
    # id-independent: references are carried as the referenced rows' natural keys
    members_table = manifest.table("project_members")
    assert [c.name for c in members_table.columns] == ["role", "project_id->projects.code", "user_id->users.sysmail"]
    assert b"u1@example.org" in files[members_table.file]
    assert [c.name for c in manifest.table("invoices").columns] == ["number", "net", "vat", "user_id->users.sysmail"]

    third = new_database("third")
    create_schema(third, sequence_offset=9000)
    report = import_archive(archive, third, mode="upsert", run_id="from-archive")

    assert content(third) == content(seeded_source)
    assert counts(third) == source_counts
    assert report.error_count == 0 and report.total("created") == sum(source_counts.values())
    assert audit_actions(third, "from-archive")[("users", "created")] == 20
    with connection(third) as conn:
        assert conn.execute("SELECT DISTINCT profile FROM import_control.import_records").fetchall() == [("archive",)]

    # the same archive again, create_only: everything exists already
    again = import_archive(archive, third, mode="create_only", run_id="again")
    assert again.total("skipped") == again.rows and again.total("created") == 0


def test_tampered_file_fails_its_checksum(seeded_source: str, empty_target: str, tmp_path: Path) -> None:
    archive = tmp_path / "copy.tar.gz"
    manifest = export_archive(seeded_source, archive, overrides=OVERRIDES)
    files = members(archive)
    victim = manifest.table("users").file
    expected = manifest.table("users").sha256
    files[victim] = files[victim].replace(b"User 3", b"Mallory")
    actual = hashlib.sha256(files[victim]).hexdigest()
    tampered = tmp_path / "tampered.tar.gz"
    write_archive(tampered, files)

    with pytest.raises(ArchiveError) as failed:
        import_archive(tampered, empty_target)
    message = str(failed.value)
    assert victim in message and expected in message and actual in message and "checksum" in message
    assert counts(empty_target)["users"] == 0  # verified before anything was loaded


UNUSED_TARGET = "postgresql://nobody@invalid.invalid:1/never_used"  # refusal must come before connecting


def small_archive(path: Path) -> None:
    """A valid one-table archive, built by hand (no database needed)."""
    data = b"acme\tAcme\n"
    index = {"format": "import_pipelines.mirror/1", "created_at": "2024-01-01T00:00:00+00:00", "schema": "public",
             "schema_fingerprint": "x", "data_format": "postgresql-text", "deferred_references": [],
             "tables": [{"name": "domains", "file": "tables/000_domains.copy", "rows": 1,
                         "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "natural_key": ["domaincode"],
                         "columns": [{"name": "domaincode", "type": "text", "kind": "column"},
                                     {"name": "label", "type": "text", "kind": "column"}]}]}
    write_archive(path, {"index.json": json.dumps(index).encode(), "tables/000_domains.copy": data})


@pytest.mark.parametrize(("name", "kind", "fragment"), [
    ("../evil", tarfile.REGTYPE, "'..'"),
    ("tables/../../evil", tarfile.REGTYPE, "'..'"),
    ("/etc/evil", tarfile.REGTYPE, "absolute path"),
    ("tables/link", tarfile.SYMTYPE, "symbolic link"),
    ("tables/hard", tarfile.LNKTYPE, "hard link"),
    ("tables/dev", tarfile.CHRTYPE, "device"),
    ("tables/fifo", tarfile.FIFOTYPE, "fifo"),
])
def test_unsafe_members_are_refused(tmp_path: Path, name: str, kind: bytes, fragment: str) -> None:
    archive = tmp_path / "copy.tar.gz"
    small_archive(archive)
    files = members(archive)

    def add_bad(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        elif kind in (tarfile.CHRTYPE, tarfile.FIFOTYPE):
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))

    bad = tmp_path / "work" / "bad.tar.gz"
    bad.parent.mkdir()
    write_archive(bad, files, extra=add_bad)
    with pytest.raises(ArchiveError) as refused:
        import_archive(bad, UNUSED_TARGET)
    assert repr(name) in str(refused.value) and fragment in str(refused.value)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "work" / "evil").exists()


def test_member_not_in_the_manifest_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "copy.tar.gz"
    small_archive(archive)
    files = members(archive)
    files["tables/extra.copy"] = b"x\n"
    write_archive(archive, files)
    with pytest.raises(ArchiveError, match="'tables/extra.copy' is not listed in index.json"):
        import_archive(archive, UNUSED_TARGET)


def test_archive_of_a_table_without_natural_key_is_refused(seeded_source: str, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="audit_notes: \\[note, created_on\\]"):
        export_archive(seeded_source, tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()

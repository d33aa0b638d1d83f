"""Corpus kind ``archive``: a ``.tar.gz`` built member by member, imported as ``import_archive`` would.

``members`` lists ``{name, type, data, linkname}`` (type: file, dir, symlink, hardlink, fifo,
chr); ``index`` overrides fields of a valid one-table manifest (``sha256: wrong``, ``format``);
``omit_index`` leaves it out. A refused archive must be refused before anything is written (the
target is a database that does not exist); ``expect: {imported: N}`` loads it into a real target.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

import pytest

from import_pipelines.db import connect
from import_pipelines.mirror import ArchiveError, import_archive
from import_pipelines_tests.corpus.loader import Case, Context, runner

DATA = b"acme\tAcme\nbeta\tBeta Ltd\n"
UNUSED_TARGET = "postgresql://nobody@invalid.invalid:1/never_used"
TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}


def manifest(overrides: dict[str, Any]) -> bytes:
    table = {"name": "domains", "file": "tables/000_domains.copy", "rows": 2, "sha256": hashlib.sha256(DATA).hexdigest(),
             "bytes": len(DATA), "natural_key": ["domaincode"],
             "columns": [{"name": "domaincode", "type": "text", "kind": "column"},
                         {"name": "label", "type": "text", "kind": "column"}]}
    index = {"format": "import_pipelines.mirror/1", "created_at": "2024-01-01T00:00:00+00:00", "schema": "public",
             "schema_fingerprint": "x", "data_format": "postgresql-text", "deferred_references": [], "tables": [table]}
    for key, value in overrides.items():
        if key == "sha256" and value == "wrong":
            table["sha256"] = "0" * 64
        elif key in table:
            table[key] = value
        else:
            index[key] = value
    return json.dumps(index).encode() if overrides.get("raw") is None else str(overrides["raw"]).encode()


def build(path, spec: dict[str, Any]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        members = [] if spec.get("omit_index") else [{"name": "index.json", "data": manifest(spec.get("index", {}))}]
        if not spec.get("omit_data"):
            members.append({"name": "tables/000_domains.copy", "data": spec.get("data", DATA)})
        for member in members + spec.get("members", []):
            info = tarfile.TarInfo(member["name"])
            info.type = TYPES[member.get("type", "file")]
            data = member.get("data", b"")
            data = data.encode() if isinstance(data, str) else data
            if info.type == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = member.get("linkname", "")
                tar.addfile(info)


@runner("archive")
def run(case: Case, ctx: Context) -> None:
    """Build the archive, import it; a refusal names the member and the rule and touches nothing."""
    path = ctx.tmp_path / "work" / f"{case.id}.tar.gz"
    path.parent.mkdir()
    build(path, case.spec)
    if "error" in case.expect:
        with pytest.raises(ArchiveError) as caught:
            import_archive(path, UNUSED_TARGET)
        for fragment in case.expect["error"]:
            assert fragment in str(caught.value), str(caught.value)
        outside = [p for p in ctx.tmp_path.rglob("*") if p.name in ("evil", "passwd")]
        assert outside == []  # nothing was extracted anywhere
        return
    target = ctx.new_database("corpus_archive")
    with connect(target) as conn:
        conn.execute("CREATE TABLE domains (id serial PRIMARY KEY, domaincode text UNIQUE NOT NULL, label text)")
        conn.commit()
    report = import_archive(path, target, run_id="corpus")
    assert report.total("created") == case.expect["imported"]
    with connect(target) as conn:
        assert conn.execute("SELECT domaincode, label FROM domains ORDER BY 1").fetchall() == [
            ("acme", "Acme"), ("beta", "Beta Ltd")]

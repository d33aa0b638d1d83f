"""Corpus kind ``file``: a file a person hands the import, opened by content and read to the end.

The case writes the file from ``text`` (in ``encoding``, default UTF-8, ``bom`` optional) or from
``hex`` bytes, named ``name``, then opens it as a records profile would (:func:`open_file`) and
reads every record. ``expect``:

- ``source_error: <fragment>``: the file cannot be read at all; the message names the file;
- ``records: N``: N good records; ``errors: [{line, error}]``: the records that could not be
  read, by the physical line they start on and a fragment of why; ``first: {column: value}``:
  values of the first good record; ``columns: [...]``: the header as read.
"""

from __future__ import annotations

from import_pipelines.sources import SourceError, open_file
from import_pipelines_tests.corpus.loader import Case, Context, runner


@runner("file")
def run(case: Case, ctx: Context) -> None:
    """Write the file, read it whole, compare with ``expect``."""
    spec, expect = case.spec, case.expect
    path = ctx.tmp_path / spec["name"]
    if "hex" in spec:
        data = bytes.fromhex("".join(spec["hex"].split()))
    else:
        encoding = spec.get("encoding", "utf-8")
        data = (b"\xef\xbb\xbf" if spec.get("bom") else b"") + spec["text"].encode(encoding)
    path.write_bytes(data)
    try:
        source = open_file(path, **spec.get("options", {}))
        records = list(source.records())
    except SourceError as error:
        assert "source_error" in expect, f"{case.id}: unexpected SourceError {error}"
        assert expect["source_error"] in str(error), str(error)
        assert path.name in str(error), f"the message must name the file: {error}"
        return
    assert "source_error" not in expect, f"{case.id}: read {len(records)} records, expected an error"
    good = [r for r in records if r.error is None]
    bad = [(r.line, r.error) for r in records if r.error is not None]
    if "records" in expect:
        assert len(good) == expect["records"], (len(good), bad)
    wanted = expect.get("errors", [])
    assert len(bad) == len(wanted), bad
    for (line, error), want in zip(bad, wanted):
        assert line == want["line"] and want["error"] in error, (line, error)
    if "first" in expect:
        assert {k: good[0].values.get(k) for k in expect["first"]} == expect["first"], dict(good[0].values)
    if "columns" in expect:
        assert source.columns() == expect["columns"]

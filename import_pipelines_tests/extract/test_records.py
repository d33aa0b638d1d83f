"""Staging a CSV file's records: the file's own lines through COPY read as the cells Python parses."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from psycopg import sql

from import_pipelines.control import ensure_control_schema
from import_pipelines.db import connect
from import_pipelines.extract.records import stage_lines, stage_raw
from import_pipelines.sources.csv_file import CsvSource
from import_pipelines_tests.sources.csv_corpus import corpus

INPUTS = ["name", "email", "note", "missing"]

# every trap at once: a preamble, CRLF and bare CR line ends, a quote inside an unquoted field (which
# PostgreSQL would read as the start of a quoted one), quoted empties, a multi-line note, a ragged
# row, blank lines, an unterminated quote, an undecodable byte, a backslash-dot cell, a footer
DIRTY = (b"Exported 2024-05-01\r\n"
         b"Name,Email,Note,Source\r\n"
         b"Ann,ann@example.com,plain,web\r\n"
         + b"".join(b"P%d,p%d@example.com,note %d,web\r\n" % (n, n, n) for n in range(20)) +
         b'Bob,bob@example.com,say "hi" twice,\r\n'
         b'"Cy","","",""\r\n'
         b'Dee,dee@example.com,"two\r\nlines",fair\n'
         b"Eve,eve@example.com,too,many,cells\r\n"
         b"\r\n"
         b",,,\r\n"
         b'Fay,fay@example.com,"never closes,x\r\n'
         b"Gus,gus@example.com,caf\xe9,\\.\r"
         b"Hal,hal@example.com,  spaced  ,\\N\r\n"
         b"Total,8,,\r\n")


def _raw_rows(url: str, source: CsvSource, *, fast: bool) -> list[tuple]:
    columns = dict(zip(INPUTS, [*source.columns()[:3], None]))
    custom = source.columns()[3:]
    with connect(url) as conn:
        ensure_control_schema(conn)
        table = f"raw_{uuid.uuid4().hex[:8]}"
        if fast:
            query = stage_lines(source=source, inputs=INPUTS, columns=columns, custom=custom, target=conn,
                                table=table, run_id="test", temporary=True)
        else:
            stage_raw(source=source, inputs=INPUTS, columns=columns, custom=custom, target=conn, table=table,
                      run_id="test", temporary=True)
            query = sql.SQL("pg_temp.{}").format(sql.Identifier(table))
        return conn.execute(sql.SQL("SELECT r._line, r._source_ref, r._error, r.name, r.email, r.note, r.missing,"
                                    " r._custom, r._modified FROM {} AS r ORDER BY r._line").format(query)).fetchall()


def test_dirty_file_stages_the_same_rows_through_copy_as_cell_by_cell(target_url: str, tmp_path: Path) -> None:
    path = tmp_path / "dirty.csv"
    path.write_bytes(DIRTY)
    careful = _raw_rows(target_url, CsvSource(path, encoding="utf-8"), fast=False)
    source = CsvSource(path, encoding="utf-8")
    fast = _raw_rows(target_url, source, fast=True)
    assert fast == careful
    lines = {row[0]: row for row in fast}
    assert len(fast) == 9 + 20
    assert lines[3][3:8] == ("Ann", "ann@example.com", "plain", None, {"Source": "web"})
    assert lines[24][5] == 'say "hi" twice' and lines[24][7] is None
    assert lines[25][3:7] == ("Cy", None, None, None)  # quoted empties are NULL, as unquoted ones
    assert lines[26][5] == "two\r\nlines"
    assert "5 fields where the header has 4" in lines[28][2]
    assert "unterminated quote" in lines[31][2]
    assert "undecodable bytes" in lines[32][2] and lines[32][7] == {"Source": "\\."}
    assert lines[33][5] == "  spaced  " and lines[33][7] == {"Source": "\\N"}
    assert lines[34][2] == "footer row, not imported"
    assert source.report.footer_lines == [34] and source.report.preamble_lines == [1]
    assert source.report.blank_rows == 2


@pytest.mark.parametrize("case", corpus(120), ids=lambda case: case.name)
def test_corpus_files_stage_the_same_rows_through_copy_as_cell_by_cell(case, target_url: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case.name}.csv"
    path.write_bytes(case.data)
    source = CsvSource(path)
    assert source.copy_dialect() == (case.delimiter, case.quotechar)
    fast = _raw_rows(target_url, source, fast=True)
    assert fast == _raw_rows(target_url, CsvSource(path), fast=False)
    assert len(fast) == source.report.rows

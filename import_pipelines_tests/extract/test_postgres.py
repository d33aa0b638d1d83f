"""Extract: a compiled SELECT streamed from a real source into a staging table of a real target."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from psycopg import sql

from import_pipelines.control import ensure_control_schema
from import_pipelines.db import connect, ident
from import_pipelines.extract.postgres import stream_to_staging
from import_pipelines.query.compile import compile_query
from import_pipelines.templates.model import FieldSpec, Query

NASTY = "line one\nline two\ttabbed \\ backslash \\N not null\r\n\u00e9\u4e2d\U0001F600"


@pytest.fixture
def source(source_url: str) -> str:
    """A source whose server settings differ from the target's: DMY dates, a foreign time zone, an enum."""
    with connect(source_url, autocommit=True) as conn:
        database = ident(conn.info.dbname)
        for setting in ("datestyle = 'SQL, DMY'", "timezone = 'Pacific/Chatham'", "intervalstyle = 'sql_standard'"):
            conn.execute(sql.SQL("ALTER DATABASE {} SET " + setting).format(database))
    with connect(source_url) as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
        conn.execute("CREATE TABLE things (id int PRIMARY KEY, note text, at timestamptz, day date, took interval,"
                     " feeling mood, payload bytea, ratio double precision, tags text[], doc jsonb)")
        conn.execute("INSERT INTO things SELECT i, CASE WHEN i = 1 THEN %s WHEN i = 2 THEN NULL ELSE 'n' || i END,"
                     " timestamptz '2024-02-03 04:05:06.789+00' + i * interval '1 day', date '2024-12-01' + i,"
                     " i * interval '1 day 2 hours 3.5 seconds', CASE WHEN i %% 2 = 0 THEN 'happy' ELSE 'sad' END::mood,"
                     " '\\x00ff0a'::bytea, 1.0 / 3 + i, ARRAY['a\"b', NULL, 'c,d'], jsonb_build_object('k', i)"
                     " FROM generate_series(1, 2500) AS i", (NASTY,))
        conn.commit()
    return source_url


QUERY = Query.model_validate({"base": {"table": "things", "alias": "t"}})
FIELDS = {name: FieldSpec.model_validate(f"t.{name}")
          for name in ("id", "note", "at", "day", "took", "feeling", "payload", "ratio", "tags", "doc")}


def test_every_value_arrives_as_the_source_holds_it(source: str, target_url: str) -> None:
    seen: list[int] = []
    with connect(target_url) as target:
        ensure_control_schema(target)
        with connect(source, read_only=True) as probe:
            compiled = compile_query(QUERY, FIELDS, server_version=probe.info.server_version)
        rows = stream_to_staging(source_url=source, target=target, compiled=compiled, table="things", run_id="r1",
                                 chunk_rows=1000, progress=lambda done, total: seen.append(done))
    assert rows == 2500
    assert seen[-1] == 2500 and seen == sorted(seen) and len(seen) >= 2  # progress as it goes, ending at the total
    columns = "id, note, at, day, took, feeling::text, payload, ratio, tags, doc"
    with connect(source, read_only=True) as conn:
        conn.execute("SET datestyle = 'ISO'; SET intervalstyle = 'postgres'")  # what psycopg parses
        expected = conn.execute(f"SELECT {columns} FROM things ORDER BY id").fetchall()
    with connect(target_url) as conn:
        staged = conn.execute(f"SELECT {columns} FROM import_control.things ORDER BY id").fetchall()
        kinds = dict(conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                                  " WHERE attrelid = 'import_control.things'::regclass AND attnum > 0").fetchall())
        storage = conn.execute("SELECT relpersistence, reloptions FROM pg_class WHERE oid = 'import_control.things'::regclass"
                               ).fetchone()
    assert staged == expected
    assert storage == ("u", ["autovacuum_enabled=false"])  # scratch: unlogged, never vacuumed behind the load
    assert staged[0][1] == NASTY and staged[1][1] is None
    assert staged[0][2] == dt.datetime(2024, 2, 4, 4, 5, 6, 789000, tzinfo=dt.timezone.utc)
    assert staged[0][3] == dt.date(2024, 12, 2)
    assert kinds["feeling"] == "text"  # the source's own enum type does not exist in the target


def test_a_failing_source_query_leaves_no_staging_rows(source: str, target_url: str,
                                                       new_database: Callable[[str], str]) -> None:
    query = Query.model_validate({"base": {"table": "things", "alias": "t"}})
    fields = {"id": FieldSpec.model_validate("t.id"),
              "q": FieldSpec.model_validate({"expression": "1 / (t.id - 2000)"})}
    with connect(target_url) as target:
        ensure_control_schema(target)
        with connect(source, read_only=True) as probe:
            compiled = compile_query(query, fields, server_version=probe.info.server_version)
        with pytest.raises(Exception, match="division by zero"):
            stream_to_staging(source_url=source, target=target, compiled=compiled, table="things", run_id="r1",
                              chunk_rows=100)
        target.rollback()
        assert target.execute("SELECT to_regclass('import_control.things')").fetchone() == (None,)


def test_each_row_carries_a_hash_that_changes_with_its_values_only(source: str, target_url: str) -> None:
    def stage(table: str) -> dict[int, str]:
        with connect(target_url) as target:
            ensure_control_schema(target)
            with connect(source, read_only=True) as probe:
                compiled = compile_query(QUERY, FIELDS, server_version=probe.info.server_version)
            stream_to_staging(source_url=source, target=target, compiled=compiled, table=table, run_id="r1",
                              chunk_rows=1000)
            return dict(target.execute(f"SELECT id, encode(_hash, 'hex') FROM import_control.{table}").fetchall())

    first = stage("first")
    with connect(source) as conn:
        conn.execute("UPDATE things SET note = note || '!' WHERE id IN (3, 4)")
        conn.execute("UPDATE things SET at = at + interval '1 microsecond' WHERE id = 5")
        conn.commit()
    second = stage("second")
    assert len(set(first.values())) == len(first) == 2500
    assert all(len(digest) == 32 and int(digest, 16) >= 0 for digest in first.values())
    with connect(source, read_only=True) as conn:  # the md5 of the row's text form, computed by the source
        conn.execute("SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres'")
        assert conn.execute("SELECT md5(q::text) FROM (SELECT id, note, at, day, took, feeling, payload, ratio, tags,"
                            " doc FROM things WHERE id = 7) AS q").fetchone()[0] == second[7]
    assert {i for i in first if first[i] != second[i]} == {3, 4, 5}


# --- '%' in template SQL, with and without filters ---------------------------------------------------
PERCENT_FIELDS = {
    "id": "t.id",
    "like_a": {"expression": "t.note LIKE 'n1%'"},
    "fifty": {"expression": "'50%'"},
    "mod": {"expression": "t.id % 2"},
    "constant": {"value": "(100% unknown)"},
    "doubled": {"expression": "'50%%'"},
}
PERCENT_FILTERS = [
    [],
    [{"column": "t.id", "op": "<=", "value": 12}],
    [{"column": "t.note", "op": "like", "value": "n1%"}, {"column": "t.id", "op": "in", "value": [10, 11, 12]}],
]


@pytest.mark.parametrize("filters", PERCENT_FILTERS, ids=["no filter", "one filter", "like filter"])
def test_percent_signs_mean_the_same_with_and_without_filters(source: str, target_url: str,
                                                              filters: list[dict]) -> None:
    query = Query.model_validate({"base": {"table": "things", "alias": "t"}, "filters": filters})
    fields = {name: FieldSpec.model_validate(spec) for name, spec in PERCENT_FIELDS.items()}
    with connect(target_url) as target:
        ensure_control_schema(target)
        with connect(source, read_only=True) as probe:
            compiled = compile_query(query, fields, server_version=probe.info.server_version)
        rows = stream_to_staging(source_url=source, target=target, compiled=compiled, table="pct", run_id="r1",
                                 chunk_rows=1000)
        staged = {r[0]: r[1:] for r in target.execute(
            "SELECT id, like_a, fifty, mod, constant, doubled FROM import_control.pct").fetchall()}
    expected_ids = [set(range(1, 2501)), set(range(1, 13)), {10, 11, 12}][PERCENT_FILTERS.index(filters)]
    assert rows == len(expected_ids) and set(staged) == expected_ids
    notes = {1: NASTY, 2: None}
    for i, (like_a, fifty, mod, constant, doubled) in staged.items():
        note = notes.get(i, f"n{i}")
        assert like_a == (None if note is None else note.startswith("n1"))
        assert (fifty, mod, constant, doubled) == ("50%", i % 2, "(100% unknown)", "50%%")


# --- text that is not UTF-8 ----------------------------------------------------------------------
@pytest.fixture
def sql_ascii_source(pg_server: str, new_database: Callable[[str], str]) -> str:
    """A SQL_ASCII source (bytes, not characters) with one row whose note holds a byte that is not UTF-8."""
    from import_pipelines.db.connect import with_database

    name = f"ipt_ascii_{uuid.uuid4().hex[:10]}"
    with connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
                             ).format(ident(name)))
    url = with_database(pg_server, name)
    try:
        with connect(url) as conn:
            conn.execute("SET client_encoding = 'SQL_ASCII'")
            conn.execute("CREATE TABLE notes (id int PRIMARY KEY, title text, body text)")
            conn.execute("INSERT INTO notes SELECT i, 'title ' || i, 'caf' || chr(195) || chr(169) || ' ' || i"
                         " FROM generate_series(1, 3000) AS i")
            # row 1700: a lone 0xff byte (Latin-1 written into a SQL_ASCII database), row 2900: a cut sequence
            conn.execute("UPDATE notes SET body = convert_from('\\x6f6b20ff21'::bytea, 'SQL_ASCII') WHERE id = 1700")
            conn.execute("UPDATE notes SET title = convert_from('\\x6ec3'::bytea, 'SQL_ASCII') WHERE id = 2900")
            conn.commit()
        yield url
    finally:
        from import_pipelines.db import drop_database

        drop_database(pg_server, name)


NOTES = Query.model_validate({"base": {"table": "notes", "alias": "n"}})
NOTE_FIELDS = {name: FieldSpec.model_validate(f"n.{name}") for name in ("id", "title", "body")}


@pytest.mark.parametrize("mode", ["fail_row", "replace"])
def test_invalid_bytes_fail_only_their_row_or_are_replaced(sql_ascii_source: str, target_url: str, mode: str) -> None:
    reported: list[tuple[int, str]] = []
    with connect(target_url) as target:
        ensure_control_schema(target)
        with connect(sql_ascii_source, read_only=True) as probe:
            compiled = compile_query(NOTES, NOTE_FIELDS, server_version=probe.info.server_version)
        rows = stream_to_staging(source_url=sql_ascii_source, target=target, compiled=compiled, run_id="r1",
                                 table="notes", chunk_rows=1000, on_invalid_text=mode,
                                 invalid_text=lambda row, message: reported.append((row, message)))
        staged = {r[0]: r[1:] for r in target.execute("SELECT id, title, body, _error FROM import_control.notes").fetchall()}
        row_ids = dict(target.execute("SELECT _rn, id FROM import_control.notes").fetchall())
    assert rows == 3000 and len(staged) == 3000  # the rest loaded
    assert staged[5] == ("title 5", "café 5", None)  # valid multi-byte UTF-8 passes untouched
    assert staged[1700][1] == "ok \ufffd!" and staged[2900][0] == "n\ufffd"
    messages = {row_ids[row]: message for row, message in reported}  # rows are numbered in stream order
    assert set(messages) == {1700, 2900}
    assert "body: not valid UTF-8 (byte 0xff at position 3)" in messages[1700]
    assert "title: not valid UTF-8 (byte 0xc3 at position 1)" in messages[2900]
    if mode == "fail_row":
        assert staged[1700][2].startswith("body: not valid UTF-8 (byte 0xff at position 3); the row is not imported")
        assert staged[2900][2].startswith("title: not valid UTF-8")
    else:
        assert staged[1700][2] is None and staged[2900][2] is None
    assert sum(1 for v in staged.values() if v[2] is not None) == (2 if mode == "fail_row" else 0)


def test_rows_of_hashable_types_are_hashed_by_value_and_others_by_text(source: str) -> None:
    from import_pipelines.extract.postgres import record_hash

    plain = Query.model_validate({"base": {"table": "things", "alias": "t"}})
    typed = {name: FieldSpec.model_validate(f"t.{name}") for name in ("id", "note", "at", "day", "ratio", "tags", "doc")}
    with_enum = {**typed, "feeling": FieldSpec.model_validate("t.feeling")}
    with connect(source, read_only=True) as conn:
        by_value = record_hash(conn, compile_query(plain, typed, server_version=conn.info.server_version))
        by_text = record_hash(conn, compile_query(plain, with_enum, server_version=conn.info.server_version))
        assert "hash_record_extended" in by_value.as_string(conn)
        assert "md5" in by_text.as_string(conn)  # an enum has no hash function of its own type
        # a value hash does not depend on how the session prints dates
        digests = set()
        for style in ("ISO, YMD", "SQL, DMY", "German"):
            conn.execute(f"SET datestyle = '{style}'")
            digests.add(conn.execute(sql.SQL("SELECT {} FROM (SELECT id, note, at, day, ratio, tags, doc FROM things"
                                             " WHERE id = 9) AS q").format(by_value)).fetchone()[0])
        assert len(digests) == 1 and len(digests.pop()) == 8

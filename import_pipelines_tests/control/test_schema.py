"""The import_control schema: created idempotently, and brought up to date where it is older."""

from __future__ import annotations

from import_pipelines.db import connect
from import_pipelines.control import ensure_control_schema

KEY_COLLATIONS = ("SELECT attname, collname FROM pg_attribute JOIN pg_collation ON pg_collation.oid = attcollation"
                  " WHERE attrelid = 'import_control.record_state'::regclass AND attname = 'source_id'")


def test_an_older_record_state_is_carried_over_with_a_byte_ordered_key(target_url: str) -> None:
    with connect(target_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA import_control")
        conn.execute("CREATE TABLE import_control.record_state (profile text NOT NULL, entity text NOT NULL,"
                     " source_id text NOT NULL, target_table text NOT NULL, target_id text, source_hash text NOT NULL,"
                     " run_id text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),"
                     " PRIMARY KEY (profile, entity, source_id))")
        conn.execute("INSERT INTO import_control.record_state (profile, entity, source_id, target_table, target_id,"
                     " source_hash, run_id) VALUES ('p', 'e', 'Zoë', 'public.t', '7', 'abcd', 'r1')")
        ensure_control_schema(conn)
        ensure_control_schema(conn)  # idempotent
        assert conn.execute(KEY_COLLATIONS).fetchall() == [("source_id", "C")]
        assert conn.execute("SELECT s.profile, s.entity, r.source_id, r.target_id, encode(r.source_hash, 'hex')"
                            " FROM import_control.record_state AS r JOIN import_control.streams AS s USING (stream_id)"
                            ).fetchall() == [("p", "e", "Zoë", "7", "abcd")]
        # a key probed with a value of the database's default collation still finds its row by index
        assert conn.execute("SELECT target_id FROM import_control.record_state WHERE source_id = ('Zo' || 'ë')::text"
                            ).fetchall() == [("7",)]


def test_migrations_apply_once_and_are_recorded(target_url: str) -> None:
    from import_pipelines.control import migrations

    with connect(target_url, autocommit=True) as conn:
        applied = ensure_control_schema(conn)
        assert applied == [path.stem for path in migrations()]
        assert ensure_control_schema(conn) == []
        recorded = [row[0] for row in conn.execute("SELECT version FROM import_control.schema_migrations ORDER BY 1")]
        assert recorded == applied

"""High-water marks of incremental reads: read, advanced forward only, with the run's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from import_pipelines.control import ensure_control_schema
from import_pipelines.control.cursors import advance_cursor, read_cursor, reset_cursor
from import_pipelines.db import connect

MARK = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_a_cursor_moves_forward_only(target_url: str) -> None:
    with connect(target_url, autocommit=True) as conn:
        ensure_control_schema(conn)
        assert read_cursor(conn, profile="p", entity="cases") is None
        first = advance_cursor(conn, profile="p", entity="cases", mark=MARK, run_id="run-1")
        assert (first.high_water_mark, first.run_id) == (MARK, "run-1")
        kept = advance_cursor(conn, profile="p", entity="cases", mark=MARK - timedelta(hours=1), run_id="run-2")
        assert (kept.high_water_mark, kept.run_id) == (MARK, "run-1")
        moved = advance_cursor(conn, profile="p", entity="cases", mark=MARK + timedelta(seconds=1), run_id="run-3")
        assert (moved.high_water_mark, moved.run_id) == (MARK + timedelta(seconds=1), "run-3")
        assert read_cursor(conn, profile="p", entity="notices") is None  # per entity
        assert read_cursor(conn, profile="q", entity="cases") is None  # per profile
        assert reset_cursor(conn, profile="p", entity="cases") and read_cursor(conn, profile="p", entity="cases") is None
        assert not reset_cursor(conn, profile="p", entity="cases")


def test_a_cursor_advanced_inside_a_run_that_rolls_back_stays_put(target_url: str) -> None:
    with connect(target_url) as conn:
        ensure_control_schema(conn)
        advance_cursor(conn, profile="p", entity="cases", mark=MARK, run_id="run-1")
        conn.commit()
        conn.execute("CREATE TABLE cases (id int)")
        conn.commit()
        with pytest.raises(RuntimeError):
            with conn.transaction():
                conn.execute("INSERT INTO cases VALUES (1)")
                advance_cursor(conn, profile="p", entity="cases", mark=MARK + timedelta(days=1), run_id="run-2")
                raise RuntimeError("the run's last batch failed")
        cursor = read_cursor(conn, profile="p", entity="cases")
        assert (cursor.high_water_mark, cursor.run_id) == (MARK, "run-1")
        with conn.transaction():
            conn.execute("INSERT INTO cases VALUES (1)")
            advance_cursor(conn, profile="p", entity="cases", mark=MARK + timedelta(days=1), run_id="run-3")
        assert read_cursor(conn, profile="p", entity="cases").run_id == "run-3"


def test_a_mark_without_a_time_zone_is_refused(target_url: str) -> None:
    with connect(target_url, autocommit=True) as conn:
        ensure_control_schema(conn)
        with pytest.raises(ValueError, match="no time zone"):
            advance_cursor(conn, profile="p", entity="cases", mark=datetime(2025, 6, 1), run_id="run-1")

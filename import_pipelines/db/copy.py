"""The pinned text form of ``COPY``: every session that reads or writes text COPY says the same.

Text COPY carries values as their text form, which depends on session settings: a date is
``03/04/2025`` under DateStyle ``SQL, DMY`` and means another day under ``SQL, MDY``; intervals
and encodings differ likewise, and ``extra_float_digits`` below 1 rounds floats (1, the default
since PostgreSQL 12, is the shortest text that reads back exactly). Every reader (a source's
``COPY ... TO STDOUT``, an archive export) and every writer (a staging ``COPY ... FROM STDIN``)
pins the same settings first, so the text one side writes is the text the other reads, whatever
the servers' own defaults. ``standard_conforming_strings`` is pinned on too: a backslash in a
template's checked literal is then a plain character on every server, as the checker read it.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from import_pipelines.settings import data_dir

PINNED_TEXT = ("SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres'; SET client_encoding = 'UTF8';"
               " SET extra_float_digits = 1; SET standard_conforming_strings = on")
# the same as session start-up options (``connect(pinned_text=True)``)
PINNED_OPTIONS = ["-c datestyle=ISO,YMD", "-c intervalstyle=postgres", "-c client_encoding=UTF8",
                  "-c extra_float_digits=1", "-c standard_conforming_strings=on"]


def pin_text_format(conn: psycopg.Connection) -> None:
    """Pin DateStyle, IntervalStyle, encoding and float precision for text COPY on ``conn``."""
    conn.execute(PINNED_TEXT)


def report_path(run_id: str, name: str) -> Path:
    """Where a run's report ``name`` goes: ``<data>/reports/<run>/<name>``, its folder made."""
    path = data_dir() / "reports" / run_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def copy_report(conn: psycopg.Connection, query: sql.Composable, *, run_id: str, name: str) -> str:
    """Stream ``query`` (a ``COPY ... TO STDOUT``) into ``<data>/reports/<run>/<name>``; returns its path."""
    path = report_path(run_id, name)
    with path.open("wb") as out, conn.cursor().copy(query) as copy:
        for block in copy:
            out.write(block)
    return str(path)

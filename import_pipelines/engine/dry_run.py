"""Dry runs: what load would do, per record, without touching the target tables.

The merge classifies every staged record exactly as a real run would and writes the prediction
to ``import_control.dry_run_records``; references to records an upstream dry run predicts will
exist resolve as they would for real (a duplicate's as its survivor's). The report is a CSV of
every prediction.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA as CONTROL
from import_pipelines.db.copy import copy_report
from import_pipelines.db.sql import ident
from import_pipelines.engine.plan import MergePlan


def write_dry_run_report(conn: psycopg.Connection, plan: MergePlan, *, run_id: str) -> str:
    """Stream the entity's predictions to ``<data>/reports/<run>/<profile>_<entity>_dry_run.csv``."""
    query = sql.SQL(
        "COPY (SELECT entity, source_id, action AS would, target_id, duplicate_of, confidence, error"
        " FROM {control}.dry_run_records WHERE run_id = {run} AND profile = {profile} AND entity = {entity}"
        " ORDER BY action, source_id) TO STDOUT (FORMAT CSV, HEADER)").format(
        control=ident(CONTROL), run=sql.Literal(run_id), profile=sql.Literal(plan.profile),
        entity=sql.Literal(plan.entity))
    return copy_report(conn, query, run_id=run_id, name=f"{plan.profile}_{plan.entity}_dry_run.csv")


def dry_run_preview(conn: psycopg.Connection, plan: MergePlan, run_id: str, limit: int) -> tuple[list[dict], list[str]]:
    """A few predicted records per action, and the duplicate pairs with the highest confidence."""
    columns = ["would", "source_id", "target_id", "duplicate_of", "confidence", "error"]
    rows = conn.execute(
        "SELECT action, source_id, target_id, duplicate_of, confidence, error FROM ("
        " SELECT *, row_number() OVER (PARTITION BY action ORDER BY confidence DESC NULLS LAST, source_id) AS k"
        " FROM import_control.dry_run_records WHERE run_id = %s AND profile = %s AND entity = %s) AS d"
        " WHERE k <= %s ORDER BY action, k", (run_id, plan.profile, plan.entity, limit)).fetchall()
    return [dict(zip(columns, r)) for r in rows], columns

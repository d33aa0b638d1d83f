"""The error budget: a load whose records fail beyond ``max_error_rate`` stops, naming the rate and the errors."""

from __future__ import annotations

import copy
import re
import uuid

import pytest

from import_pipelines.db import connection
from import_pipelines.engine.budget import ErrorBudgetExceeded
from import_pipelines.templates.loader import parse_template
from import_pipelines_tests.helpers import run_import

TEMPLATE = {
    "name": "stock", "source_system": "erp", "batch_rows": 100,
    "entities": {"items": {
        "target": "items", "source_id": "external_id",
        "query": {"base": {"table": "src_items", "alias": "i"}},
        "fields": {"external_id": "i.id", "name": "i.name", "qty": "i.qty", "weight": "i.weight"},
    }},
}


TWENTY_PERCENT = {"bad_qty": "g % 10 = 0", "bad_weight": "g % 10 = 5"}  # two kinds of error, 10% each


def make_databases(source_url: str, target_url: str, *, rows: int, bad_qty: str, bad_weight: str = "false") -> None:
    """``rows`` items; where ``bad_qty`` holds (SQL over ``g``, the item number) the quantity is not an
    integer, where ``bad_weight`` holds the weight is not a number."""
    with connection(source_url) as conn:
        conn.execute("CREATE TABLE src_items (id int PRIMARY KEY, name text, qty text, weight text)")
        conn.execute(f"INSERT INTO src_items SELECT g, 'item ' || g,"
                     f" CASE WHEN {bad_qty} THEN 'n/a ' || g ELSE (g % 50)::text END,"
                     f" CASE WHEN {bad_weight} THEN 'heavy' ELSE '1.5' END FROM generate_series(1, {rows}) AS g")
        conn.commit()
    with connection(target_url) as conn:
        conn.execute("CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                     " source_system text NOT NULL, external_id text NOT NULL, name text, qty integer,"
                     " weight numeric, UNIQUE (source_system, external_id))")
        conn.commit()


def counts(target_url: str) -> tuple[int, dict[str, int]]:
    with connection(target_url) as conn:
        rows = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        audit = dict(conn.execute("SELECT action, count(*) FROM import_control.import_records GROUP BY action")
                     .fetchall())
    return rows, audit


def test_twenty_percent_broken_rows_stop_at_the_default_budget(source_url: str, target_url: str) -> None:
    make_databases(source_url, target_url, rows=1000, **TWENTY_PERCENT)
    template = parse_template(TEMPLATE)
    assert template.error_rate_budget("items") == 0.1 and template.error_budget_floor == 100

    with pytest.raises(ErrorBudgetExceeded) as stopped:
        run_import(template=template, source_url=source_url, target_url=target_url, run_id=str(uuid.uuid4()))

    error = stopped.value
    message = str(error)
    # the first batch (100 records, 20 failed, committed) already breaks the budget; the batch the
    # second session was merging at that moment commits too, and nothing after it starts
    assert error.processed in (100, 200) and error.failed == error.processed // 5
    assert re.search(r"items load stopped: (20|40) of (100|200) records failed \(20\.0%\), above the error budget"
                     r" of 10\.0% \(max_error_rate\)", message), message
    # the most common errors with their counts, one line per kind of error whatever the value
    assert [count for _, count in error.top_errors] == [error.failed // 2, error.failed // 2]
    kinds = [kind for kind, _ in error.top_errors]
    assert any(kind.startswith("qty: '…'") and "is not a valid integer" in kind for kind in kinds), kinds
    assert any("weight: '…'" in kind for kind in kinds), kinds
    assert f"{error.top_errors[0][1]:,} x {error.top_errors[0][0]}" in message
    # committed batches stay, with their audit; the queued ones never ran
    rows, audit = counts(target_url)
    assert rows == error.processed - error.failed and audit == {"created": rows, "failed": error.failed}


def test_a_higher_budget_lets_the_same_source_finish(source_url: str, target_url: str) -> None:
    make_databases(source_url, target_url, rows=1000, **TWENTY_PERCENT)
    data = copy.deepcopy(TEMPLATE)
    data["entities"]["items"]["max_error_rate"] = 0.25
    results = run_import(template=parse_template(data), source_url=source_url, target_url=target_url)
    assert results["items"].counts["created"] == 800 and results["items"].counts["failed"] == 200
    assert counts(target_url) == (800, {"created": 800, "failed": 200})


def test_a_few_early_failures_are_not_judged_before_the_floor(source_url: str, target_url: str) -> None:
    # one failure among three records is a third of them, but the budget is judged from 100 records on
    make_databases(source_url, target_url, rows=3, bad_qty="g = 2")
    results = run_import(template=parse_template(TEMPLATE), source_url=source_url, target_url=target_url)
    assert results["items"].counts["created"] == 2 and results["items"].counts["failed"] == 1


def test_the_budget_is_validated_with_the_template() -> None:
    data = copy.deepcopy(TEMPLATE)
    data["entities"]["items"]["max_error_rate"] = 1.5
    with pytest.raises(Exception, match=r"entities\.items\.max_error_rate"):
        parse_template(data)


def test_a_sync_judges_its_failures_against_every_record_it_processed(source_url: str, target_url: str) -> None:
    # 5% of the records fail; a sync reads only those again (they have no state) besides the changed
    # ones, and counts the rest unchanged without reading them: 50 failures of 1,000, not of 50
    make_databases(source_url, target_url, rows=1000, bad_qty="g % 20 = 0")
    template = parse_template(TEMPLATE)
    first = run_import(template=template, source_url=source_url, target_url=target_url)
    second = run_import(template=template, source_url=source_url, target_url=target_url)
    assert first["items"].counts["failed"] == second["items"].counts["failed"] == 50
    assert second["items"].counts["unchanged"] == 950

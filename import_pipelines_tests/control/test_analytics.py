"""The import history: two real push runs into a target, summarised by the query, the asset and the command."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from import_pipelines import cli
from import_pipelines.control.analytics import import_history
from import_pipelines.db import connection
from import_pipelines.defs.control.definitions import import_analytics
from import_pipelines.push import push_run_config
from import_pipelines_tests.push.test_push import TARGET_ENV, counts, push_job, target  # noqa: F401 (fixture)


def test_two_runs_are_summarised_with_duplicates_errors_and_waiting_reviews(
        target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IMPORT_PIPELINES_DATA_DIR", str(tmp_path / "data"))
    job = push_job()
    first_batch = [{"email": f"p{i}@example.org", "first_name": f"P{i}"} for i in range(5)]
    first_batch += [{"email": "P0@EXAMPLE.ORG ", "first_name": "P0"},  # a second record of p0: a duplicate
                    {"first_name": "Nobody"}]  # neither an email nor a phone: fails
    reported: dict[str, int] = {}
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        for batch in (first_batch, first_batch[:3]):
            result = job.execute_in_process(run_config=push_run_config("crm_push", {"contacts": batch}),
                                            instance=instance)
            for action, n in counts(result).items():
                reported[action] = reported.get(action, 0) + n
    with connection(target, autocommit=True) as conn:
        conn.execute("INSERT INTO import_control.review_pairs (profile, entity, source_id, candidate_kind, candidate,"
                     " confidence, run_id, decision) VALUES ('crm_push', 'contacts', 'a', 'target', '1', 0.8, 'r',"
                     " NULL), ('crm_push', 'contacts', 'b', 'target', '2', 0.8, 'r', 'rejected')")
        history = import_history(conn, days=7)
        later = import_history(conn, days=7, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30))

    (stream,) = history.streams
    assert (stream.profile, stream.entity, stream.runs, stream.source_rows) == ("crm_push", "contacts", 2, 10)
    assert {a: getattr(stream, a) for a in reported} == reported  # what the two runs reported, summed
    assert stream.created == 5 and stream.failed == 1
    assert stream.duplicates == 1 and stream.waiting_review == 1
    assert stream.errors == {"no_contact": 1, "no_identifier": 1}
    assert stream.failure_rate == pytest.approx(0.1) and stream.rows_per_s and stream.rows_per_s > 0
    assert history.totals()["errors"] == 2
    # a window that ends a month later holds only the review still waiting (listed whenever)
    assert [(s.runs, s.source_rows, s.waiting_review) for s in later.streams] == [(0, 0, 1)]

    # the asset: the totals as numeric metadata, the table as markdown
    monkeypatch.setenv("ANALYTICS_TARGET_URL", target)
    result = dg.materialize([import_analytics], run_config={
        "ops": {"import_analytics": {"config": {"target_url_env": "ANALYTICS_TARGET_URL", "days": 7}}}})
    metadata = result.asset_materializations_for_node("import_analytics")[0].metadata
    assert (metadata["runs"].value, metadata["source_rows"].value, metadata["failed"].value) == (2, 10, 1)
    assert "| crm_push | contacts | 2 |" in metadata["streams"].value

    # the command
    assert cli.main(["analytics", "--days", "7", "--json", "--target-env", "ANALYTICS_TARGET_URL"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["totals"]["runs"] == 2 and printed["streams"][0]["duplicates"] == 1


def test_the_window_must_hold_a_day(target: str) -> None:
    with connection(target) as conn, pytest.raises(ValueError, match="days must be at least 1"):
        import_history(conn, days=0)

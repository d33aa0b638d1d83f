"""The checks' queries after a load through the steps: references after the late seed, reconciliation.

A self-referencing entity with a parent that does not exist: before the late seed its deferred
references are pending, after it the missing one is unresolved. Rows failed by validation and
records repeated at the source still reconcile: every source row has exactly one outcome.
"""

from __future__ import annotations

import uuid

from import_pipelines.db import connection
from import_pipelines.pipeline import EntityRun, dedupe, extract, load, map_and_validate
from import_pipelines.pipeline.checks import reconciliation, references_after_late_seed
from import_pipelines.pipeline.late_seed import resolve_pending
from import_pipelines.templates.loader import parse_template
from import_pipelines_tests.pipeline.test_late_seed import PROJECTS_DDL, TEMPLATE as LATE_SEED_TEMPLATE

TEMPLATE = {**LATE_SEED_TEMPLATE, "entities": {"projects": {
    **LATE_SEED_TEMPLATE["entities"]["projects"],
    "validate": [{"expect": "matches", "field": "name", "pattern": "^[a-z]+$"}]}}}


def test_references_after_the_late_seed_and_reconciliation(source_url: str, target_url: str) -> None:
    with connection(source_url) as conn:
        conn.execute("CREATE TABLE src_projects (id int, name text, parent_id int)")
        # a chain, an orphan (parent 99), a name failing validation, a source id given twice
        conn.execute("INSERT INTO src_projects VALUES (1, 'child', 2), (2, 'parent', 3), (3, 'root', NULL),"
                     " (4, 'orphan', 99), (5, 'Bad Name', NULL), (6, 'twin', NULL), (6, 'twins', NULL)")
        conn.commit()
    with connection(target_url) as conn:
        conn.execute(PROJECTS_DDL)
        conn.commit()
    template = parse_template(TEMPLATE)
    run_id = str(uuid.uuid4())
    run = EntityRun(profile="pm", template=template, entity_name="projects", run_id=run_id,
                    source_url=source_url, target_url=target_url)
    quiet = lambda message: None  # noqa: E731
    counts = load(run, dedupe(run, map_and_validate(run, extract(run, log=quiet), log=quiet), log=quiet),
                  log=quiet).counts
    assert (counts["created"], counts["failed"], counts["skipped"]) == (5, 1, 1)

    outcome = reconciliation(target_url, profile="pm", entity="projects", run_id=run_id)
    assert outcome["passed"] and outcome["source_rows"] == 7 and outcome["counted"] == "snapshot"
    assert (outcome["audit_created"], outcome["audit_failed"], outcome["audit_skipped"]) == (5, 1, 1)

    before = references_after_late_seed(target_url, profile="pm", entity="projects", run_id=run_id)
    assert before["still_pending"] > 0  # deferred, not yet resolved: the check waits for the late seed
    resolve_pending(target_url, template=template, profile="pm", run_id=run_id, source_system="pm")
    after = references_after_late_seed(target_url, profile="pm", entity="projects", run_id=run_id)
    assert after == {"unresolved": 1, "still_pending": 0, "left_empty": 0}

    # an audit row changed to another action no longer adds up with the run summary
    with connection(target_url) as conn:
        conn.execute("UPDATE import_control.audit_records SET action = 'created' WHERE action = 'skipped'")
        conn.commit()
    outcome = reconciliation(target_url, profile="pm", entity="projects", run_id=run_id)
    assert outcome["recorded"] == outcome["source_rows"] == outcome["summary_total"]  # the totals agree
    assert not outcome["actions_agree"] and not outcome["passed"]

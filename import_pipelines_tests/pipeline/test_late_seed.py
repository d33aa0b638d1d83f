"""Self references in a template are loaded empty and resolved by late_seed, by natural key."""

from __future__ import annotations

import uuid

from import_pipelines.db import connection
from import_pipelines.pipeline.late_seed import resolve_pending
from import_pipelines.pipeline import EntityRun, dedupe, extract, load, map_and_validate
from import_pipelines.templates.graph import dependency_order, is_late, upstream_entities
from import_pipelines.templates.loader import parse_template

TEMPLATE = {
    "name": "projects", "source_system": "pm",
    "entities": {"projects": {
        "target": "projects", "source_id": "external_id",
        "query": {"base": {"table": "src_projects", "alias": "p"}},
        "fields": {"external_id": "p.id", "name": "p.name", "parent_key": "p.parent_id"},
        "references": {"parent_id": {"entity": "projects", "field": "parent_key"}},
    }},
}

PROJECTS_DDL = ("CREATE TABLE projects (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 500) PRIMARY KEY,"
                " source_system text NOT NULL, external_id text, name text NOT NULL,"
                " parent_id bigint REFERENCES projects (id), UNIQUE (source_system, external_id))")


def test_self_reference_is_late_seeded_and_missing_parents_are_errors(source_url: str, target_url: str) -> None:
    with connection(source_url) as conn:
        conn.execute("CREATE TABLE src_projects (id int PRIMARY KEY, name text, parent_id int)")
        # a child before its parent, a chain, and a parent that does not exist (99)
        conn.execute("INSERT INTO src_projects VALUES (1, 'child', 2), (2, 'parent', 3), (3, 'root', NULL),"
                     " (4, 'orphan', 99)")
        conn.commit()
    with connection(target_url) as conn:
        conn.execute(PROJECTS_DDL)
        conn.commit()
    template = parse_template(TEMPLATE)
    assert is_late(template, "projects", "parent_id")
    assert upstream_entities(template, "projects") == [] and dependency_order(template) == ["projects"]

    run_id = str(uuid.uuid4())
    run = EntityRun(profile="pm", template=template, entity_name="projects", run_id=run_id,
                    source_url=source_url, target_url=target_url)
    assert load(run, dedupe(run, map_and_validate(run, extract(run)))).counts["created"] == 4
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM projects WHERE parent_id IS NOT NULL").fetchone()[0] == 0
    outcome = resolve_pending(target_url, template=template, profile="pm", run_id=run_id, source_system="pm")
    assert (outcome.resolved, outcome.unresolved) == (2, 1)
    with connection(target_url) as conn:
        pairs = dict(conn.execute("SELECT c.external_id, p.external_id FROM projects c"
                                  " LEFT JOIN projects p ON p.id = c.parent_id").fetchall())
        errors = conn.execute("SELECT source_id, field, message FROM import_control.import_errors").fetchall()
        pending = conn.execute("SELECT count(*) FROM import_control.pending_references").fetchone()[0]
    assert pairs == {"1": "2", "2": "3", "3": None, "4": None}
    assert errors == [("4", "parent_id", "parent_id: no projects with external_id 99; left empty")]
    assert pending == 0

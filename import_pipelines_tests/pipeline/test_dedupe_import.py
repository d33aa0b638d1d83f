"""Duplicate detection decides create, update or skip before anything is written."""

from __future__ import annotations

import uuid

import pytest

from import_pipelines.db import connection
from import_pipelines.pipeline import EntityRun, dedupe, extract, load, map_and_validate
from import_pipelines.service_vault import migrate
from import_pipelines.templates.loader import parse_template


def _template(*, mode: str = "upsert") -> object:
    return parse_template({
        "name": "people", "source_system": "crm", "mode": mode,
        "entities": {"customer_users": {
            "target": "customer_users", "source_id": "external_id",
            "query": {"base": {"table": "people", "alias": "p"}},
            "fields": {"external_id": "p.id", "first_name": "p.first_name", "last_name": "p.last_name",
                       "display_name": {"concat": ["p.first_name", "p.last_name"]},
                       "email": "p.email", "phone": "p.phone", "job_title": "p.job_title",
                       "source_created_at": "p.updated_at"},
            "dedupe": {"strategy": "fuzzy", "primary": ["email", "phone"],
                       "secondary": ["first_name", "last_name"]},
            "survivor_updated": "source_created_at",
        }},
    })


def _source(url: str, rows: list[tuple]) -> None:
    with connection(url) as conn:
        conn.execute("CREATE TABLE people (id int PRIMARY KEY, first_name text, last_name text, email text,"
                     " phone text, job_title text, updated_at timestamptz)")
        with conn.cursor().copy("COPY people FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()


def _run(template, source_url: str, target_url: str, *, mode: str | None = None) -> dict[str, int]:
    run = EntityRun(profile="crm", template=template, entity_name="customer_users", run_id=str(uuid.uuid4()),
                    source_url=source_url, target_url=target_url, mode=mode)
    return load(run, dedupe(run, map_and_validate(run, extract(run)))).counts


def test_three_copies_become_one_row_with_the_survivor_rule(source_url: str, target_url: str) -> None:
    _source(source_url, [
        (1, "John", "Doe", "John.Doe@Example.com ", "(555) 010-2000", None, "2024-01-01"),
        (2, "Jon", "Doe", "john.doe@example.com", "+1 555 010 2000", "Engineer", "2024-03-01"),  # most recent
        (3, "John", "Doe ", "john.doe@exmple.com", "555-010-2000", None, "2024-02-01"),
        (4, "Mary", "Major", "mary@example.org", "555 777 1234", None, "2024-01-01"),
    ])
    migrate(target_url)
    counts = _run(_template(), source_url, target_url)
    assert counts["created"] == 2 and counts["skipped"] == 2
    with connection(target_url) as conn:
        rows = conn.execute("SELECT external_id, first_name FROM customer_users ORDER BY external_id").fetchall()
        assert rows == [("2", "Jon"), ("4", "Mary")]  # the most recently updated copy survives
        dups = conn.execute("SELECT source_id, duplicate_of, confidence, match_fields FROM import_control.import_records"
                            " WHERE action = 'skipped' ORDER BY source_id").fetchall()
    assert [(d[0], d[1]) for d in dups] == [("1", "2"), ("3", "2")]
    assert all(d[2] >= 85 for d in dups) and all("phone" in d[3] for d in dups)


@pytest.mark.parametrize(("mode", "expected", "changed_name", "new_row"), [
    ("create_only", {"skipped": 1, "created": 1}, False, True),
    ("update_only", {"updated": 1, "skipped": 1}, True, False),
    ("upsert", {"updated": 1, "created": 1}, True, True),
    ("create_new", {"created": 2}, False, True),
])
def test_mode_decides_for_matched_and_unmatched_records(source_url: str, target_url: str, mode: str,
                                                        expected: dict[str, int], changed_name: bool,
                                                        new_row: bool) -> None:
    migrate(target_url)
    with connection(target_url) as conn:
        conn.execute("INSERT INTO customer_users (source_system, external_id, first_name, last_name, display_name,"
                     " email, phone) VALUES ('app', 'u-1', 'Johnny', 'Doe', 'Johnny Doe', 'john.doe@example.com',"
                     " '5550102000')")
        conn.commit()
    # record 10 is the existing Johnny Doe (same email, reformatted phone); record 11 is new
    _source(source_url, [(10, "John", "Doe", "JOHN.DOE@example.com", "(555) 010-2000", "CTO", "2024-05-01"),
                         (11, "Ann", "Lee", "ann.lee@example.net", "555 999 0000", None, "2024-05-01")])
    counts = _run(_template(), source_url, target_url, mode=mode)
    assert {k: v for k, v in counts.items() if v} == expected
    with connection(target_url) as conn:
        existing = conn.execute("SELECT first_name, external_id FROM customer_users WHERE source_system = 'app'"
                                ).fetchone()
        ann = conn.execute("SELECT count(*) FROM customer_users WHERE first_name = 'Ann'").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM customer_users").fetchone()[0]
        matched = conn.execute("SELECT action, target_id, confidence FROM import_control.import_records"
                               " WHERE source_id = '10'").fetchone()
    assert existing == (("John" if changed_name else "Johnny"), "u-1")  # the natural key of the match is kept
    assert ann == (1 if new_row else 0)
    assert total == 1 + (1 if new_row else 0) + (1 if mode == "create_new" else 0)
    if mode != "create_new":
        assert matched[2] >= 85  # matched with its confidence recorded


def test_dry_run_writes_nothing_and_predicts(source_url: str, target_url: str) -> None:
    _source(source_url, [(1, "A", "B", "a@b.c", None, None, "2024-01-01"), (2, "A", "B", "a@b.c ", None, None, None)])
    migrate(target_url)
    template = _template()
    run = EntityRun(profile="crm", template=template, entity_name="customer_users", run_id=str(uuid.uuid4()),
                    source_url=source_url, target_url=target_url, dry_run=True)
    result = load(run, dedupe(run, map_and_validate(run, extract(run))))
    assert result.dry_run and result.counts["created"] == 1 and result.counts["skipped"] == 1
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM import_control.import_records").fetchone()[0] == 0
    assert _run(template, source_url, target_url) == result.counts

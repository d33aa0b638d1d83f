"""Retry of a run's failed records after the template is fixed: exactly those records, nothing else."""

from __future__ import annotations

import pytest

from import_pipelines.control.retry import RetryError, retry_failed
from import_pipelines.db import connection
from import_pipelines_tests.control.undo_fixture import create_tables, template
from import_pipelines_tests.helpers import run_import

# the fixed template reads the number out of "3 visits"
FIXED = {"expression": "NULLIF(regexp_replace(c.visits, '[^0-9]', '', 'g'), '')"}


@pytest.fixture
def failed_run(source_url: str, target_url: str) -> tuple[str, str]:
    """Run ``broken``: 30 contacts, three of which ("3 visits") do not read as the integer column."""
    create_tables(source_url, target_url)
    with connection(source_url) as conn:
        conn.execute("INSERT INTO src_accounts SELECT g, 'account ' || g FROM generate_series(1, 3) g")
        conn.execute("INSERT INTO src_contacts SELECT g, g % 3 + 1, 'contact ' || g, NULL, g::text"
                     " FROM generate_series(1, 30) g")
        conn.execute("UPDATE src_contacts SET visits = id || ' visits' WHERE id IN (4, 9, 17)")
        conn.commit()
    counts = run_import(template=template(), source_url=source_url, target_url=target_url, profile="crm",
                        run_id="broken")["contacts"].counts
    assert (counts["created"], counts["failed"]) == (27, 3)
    return source_url, target_url


def test_retry_after_fixing_the_template_loads_exactly_the_failed_records(failed_run: tuple[str, str]) -> None:
    source_url, target_url = failed_run
    with connection(source_url) as conn:  # a change to a record that did not fail: not the retry's business
        conn.execute("UPDATE src_contacts SET name = 'renamed' WHERE id = 1")
        conn.execute("INSERT INTO src_contacts VALUES (31, 1, 'new', NULL, '5')")
        conn.commit()
    outcome = retry_failed("broken", template=template(FIXED), source_url=source_url, target_url=target_url,
                           retry_run_id="retry")
    assert outcome.failed == {"contacts": 3} and outcome.counts == {"contacts": {"created": 3}}
    with connection(target_url) as conn:
        records = conn.execute("SELECT entity, source_id, action FROM import_control.import_records"
                               " WHERE run_id = 'retry' ORDER BY source_id").fetchall()
        visits = conn.execute("SELECT external_id, visits FROM contacts WHERE external_id IN ('4', '9', '17')"
                              " ORDER BY visits").fetchall()
        untouched = conn.execute("SELECT name FROM contacts WHERE external_id = '1'").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
        linked = conn.execute("SELECT count(*) FROM contacts WHERE account_id IS NOT NULL").fetchone()[0]
    assert records == [("contacts", "17", "created"), ("contacts", "4", "created"), ("contacts", "9", "created")]
    assert visits == [("4", 4), ("9", 9), ("17", 17)]
    assert untouched == "contact 1" and total == 30 and linked == 30
    # nothing failed in the retry: a second retry of it has nothing to do
    with pytest.raises(RetryError, match="no failed records"):
        retry_failed("retry", template=template(FIXED), source_url=source_url, target_url=target_url)


def test_a_source_id_computed_by_an_expression_is_narrowed_by_a_where(failed_run: tuple[str, str]) -> None:
    source_url, target_url = failed_run
    fixed = template(FIXED)
    fixed.entities["contacts"].fields["external_id"] = fixed.entities["contacts"].fields["external_id"].model_copy(
        update={"column": None, "expression": "'' || c.id"})
    outcome = retry_failed("broken", template=fixed, source_url=source_url, target_url=target_url, retry_run_id="r")
    assert outcome.counts == {"contacts": {"created": 3}}
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 30


def test_a_template_still_broken_fails_the_same_records_again(failed_run: tuple[str, str]) -> None:
    source_url, target_url = failed_run
    outcome = retry_failed("broken", template=template(), source_url=source_url, target_url=target_url)
    assert outcome.counts == {"contacts": {"failed": 3}}
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 27


def test_what_cannot_be_narrowed_is_refused_by_name(failed_run: tuple[str, str]) -> None:
    source_url, target_url = failed_run
    computed = template({"expression": "c.visits"})
    computed.entities["contacts"].fields["external_id"] = computed.entities["contacts"].fields["external_id"].model_copy(
        update={"column": None, "concat": ["c.id", "c.name"]})
    with pytest.raises(RetryError, match="contacts: its source_id field 'external_id' is computed"):
        retry_failed("broken", template=computed, source_url=source_url, target_url=target_url)
    with pytest.raises(RetryError, match="no import run 'nope'"):
        retry_failed("nope", template=template(FIXED), source_url=source_url, target_url=target_url)


def test_a_records_entity_is_refused_with_what_to_do_instead() -> None:
    from import_pipelines.control.retry import narrowed
    from import_pipelines.templates.loader import parse_template

    pushed = parse_template({"name": "crm", "source_system": "crm", "entities": {"contacts": {
        "target": "contacts", "source_id": "external_id",
        "records": {"inputs": {"external_id": {"kind": "id"}, "name": {"kind": "name"}}},
        "fields": {"external_id": "r.external_id", "name": "r.name"}}}})
    with pytest.raises(RetryError, match="contacts: reads records .* the profile's next run reads them again"):
        narrowed(pushed, {"contacts": ["1"]})
    # the template given is left as it was
    assert narrowed(template(), {"contacts": ["1", "2"]}).entities["contacts"].query.filters[0].value == ["1", "2"]
    assert template().entities["contacts"].query.filters == []


def test_retry_command_and_job(failed_run: tuple[str, str], tmp_path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from import_pipelines.cli import main
    from import_pipelines.defs.control.undo import retry_failed_records
    from import_pipelines_tests.control.undo_fixture import template_data

    source_url, target_url = failed_run
    monkeypatch.setenv("CRM_SOURCE_URL", source_url)
    monkeypatch.setenv("CRM_TARGET_URL", target_url)
    fixed, broken = tmp_path / "fixed.yaml", tmp_path / "broken.yaml"
    fixed.write_text(yaml.safe_dump(template_data(FIXED)))
    broken.write_text(yaml.safe_dump(template_data()))
    env = ["--source-env", "CRM_SOURCE_URL", "--target-env", "CRM_TARGET_URL"]
    # no profile of the code location is called crm: the template must be given
    assert main(["retry-failed", "broken", *env]) == 2
    assert "give its --template" in capsys.readouterr().err
    assert main(["retry-failed", "broken", "--template", str(broken), *env]) == 0
    assert "contacts: 3 failed records read again: failed 3" in capsys.readouterr().out
    result = retry_failed_records.execute_in_process(run_config={"ops": {"retry_failed_op": {"config": {
        "run_id": "broken", "template": str(fixed), "source_url_env": "CRM_SOURCE_URL",
        "target_url_env": "CRM_TARGET_URL"}}}})
    assert result.success and result.output_for_node("retry_failed_op") == 3
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM import_control.import_records WHERE run_id = %s"
                            " AND action = 'created'", (result.run_id,)).fetchone()[0] == 3


def test_a_run_finds_its_profile_in_the_code_location() -> None:
    from import_pipelines.control.profiles import profile_attributes

    demo = profile_attributes("freescout_demo")
    assert demo is not None and (demo["template"], demo["source_system"]) == ("freescout", "freescout")
    assert profile_attributes("crm") is None

"""FieldMapper as a Dagster resource: the key through dg.EnvVar, the refusal, the run-config correction."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from import_pipelines.mapping import CONTACT_FIELDS, mapping_markdown
from import_pipelines.mapping.resource import FieldMapper
from import_pipelines_tests.mapping.openai_server import Behaviour, fake_openai, response_body

HEADERS = ["E-Mail", "Tel", "Spalte 7"]
ROWS = [["anna@example.de", "+49 30 1234567", "x1"], ["ben@example.de", "030 555010", "y2"]]
KEY = "sk-resource-test-4f7Qw9Lm2Zx"


@dg.asset
def mapped_contacts(field_mapper: FieldMapper) -> dg.MaterializeResult:
    """Suggest, decide, and show the mapping as metadata, as an import step does."""
    suggestion = field_mapper.suggest(HEADERS, ROWS, CONTACT_FIELDS, template="contacts")
    verdict = field_mapper.decide(suggestion, source="kontakte.csv", template="contacts")
    if not verdict.accepted:
        raise dg.Failure(description=verdict.message)
    return dg.MaterializeResult(metadata={"mapping": dg.MetadataValue.md(mapping_markdown(suggestion)),
                                          "mapping_method": suggestion.method,
                                          "mapping_confidence": suggestion.overall_confidence})


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.get_asset_materialization_events()
    return event.materialization.metadata


def test_the_key_comes_through_dg_envvar_and_the_ai_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPT_RESOURCE_KEY", KEY)
    answer = {"columns": [{"header": "E-Mail", "field": "email", "confidence": 0.98, "alternatives": []},
                          {"header": "Tel", "field": "phone", "confidence": 0.95, "alternatives": []},
                          {"header": "Spalte 7", "field": "custom", "confidence": 0.8, "alternatives": []}],
              "overall_confidence": 0.9}
    with fake_openai() as server:
        server.answer_with(Behaviour(body=response_body(answer)))
        mapper = FieldMapper(api_key=dg.EnvVar("IPT_RESOURCE_KEY"), base_url=server.url, model="gpt-x", max_retries=0)
        result = dg.materialize([mapped_contacts], resources={"field_mapper": mapper})
    assert result.success
    metadata = _metadata(result)
    assert metadata["mapping_method"].value == "ai"
    assert "| Spalte 7 | custom | 0.80 | ai |" in metadata["mapping"].value
    (request,) = server.requests
    assert {k.casefold(): v for k, v in request["headers"].items()}["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(metadata)


def test_an_uncertain_mapping_stops_the_run_and_its_run_config_lets_the_next_one_load(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    refused = dg.materialize([mapped_contacts], resources={"field_mapper": FieldMapper()}, raise_on_error=False)
    assert not refused.success
    failure = refused.get_step_failure_events()[0].step_failure_data.user_failure_data
    message = failure.description
    assert "is not certain enough to load" in message and "'Spalte 7' -> custom" in message
    snippet = message.split("or launch the run with this run config:\n", 1)[1]
    run_config = yaml.safe_load(snippet)
    assert run_config == {"resources": {"field_mapper": {"config": {"overrides": {"Spalte 7": "custom"}}}}}

    run_config["resources"]["field_mapper"]["config"]["overrides"]["Spalte 7"] = "notes"
    accepted = dg.materialize([mapped_contacts], resources={"field_mapper": FieldMapper.configure_at_launch()},
                              run_config=run_config)
    assert accepted.success
    table = _metadata(accepted)["mapping"].value
    assert "| Spalte 7 | notes | 1.00 | heuristic |" in table and "| E-Mail | email |" in table

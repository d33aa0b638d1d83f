"""The OpenAI path: the real openai client against a local server speaking the Responses API."""

from __future__ import annotations

import json
import logging
import time

import pytest

from import_pipelines.mapping import AISettings, suggest
from import_pipelines.mapping.ai import AIMappingError, mask_value, suggest_ai
from import_pipelines.mapping.fields import CONTACT_FIELDS
from import_pipelines_tests.mapping.openai_server import Behaviour, fake_openai, response_body

KEY = "sk-test-Zq8rT4vB1nM6xK2pL9wE"
HEADERS = ["E-Mail", "Tel", "Firma", "Notiz"]
ROWS = [["anna.muster@example.de", "+49 30 1234567", "Muster GmbH", "Rückruf am Montag"],
        ["ben.bauer@example.de", "0171 5550101", "Bauer AG", ""],
        ["cem.yilmaz@example.de", "040 555010", "Yilmaz KG", "VIP"],
        ["dora.klein@example.de", "089 555020", "Klein & Co", ""]]


def _answer(confidence: float = 0.93, overall: float = 0.92) -> dict:
    return {"columns": [
        {"header": "E-Mail", "field": "email", "confidence": 0.99, "alternatives": []},
        {"header": "Tel", "field": "phone", "confidence": confidence, "alternatives": [{"field": "mobile", "confidence": 0.2}]},
        {"header": "Firma", "field": "company", "confidence": 0.97, "alternatives": []},
        {"header": "Notiz", "field": "notes", "confidence": 0.9, "alternatives": [{"field": "custom", "confidence": 0.1}]}],
        "overall_confidence": overall}


def _settings(url: str, **overrides) -> AISettings:
    values = {"model": "gpt-test-mini", "api_key_env": "IPT_OPENAI_KEY", "base_url": url, "timeout": 5.0, "max_retries": 1}
    return AISettings(**{**values, **overrides})


@pytest.fixture
def key_in_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("IPT_OPENAI_KEY", KEY)
    return KEY


def test_a_good_answer_is_the_suggestion(key_in_env: str) -> None:
    with fake_openai() as server:
        server.answer_with(Behaviour(body=response_body(_answer())))
        suggestion = suggest(HEADERS, ROWS, CONTACT_FIELDS, ai=_settings(server.url))
    assert suggestion.method == "ai" and suggestion.fallback_reason is None
    assert suggestion.mapping() == {"E-Mail": "email", "Tel": "phone", "Firma": "company", "Notiz": "notes"}
    assert suggestion.overall_confidence == 0.92
    assert suggestion.columns[1].candidates[0].field == "mobile"
    (request,) = server.requests
    assert request["path"] == "/v1/responses"
    headers = {k.casefold(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    body = request["json"]
    assert body["model"] == "gpt-test-mini"
    assert body["text"]["format"]["type"] == "json_schema" and body["text"]["format"]["strict"] is True
    payload = json.loads(body["input"])
    assert [c["header"] for c in payload["columns"]] == HEADERS
    assert {f["name"] for f in payload["target_fields"]} == {f.name for f in CONTACT_FIELDS}
    # a few masked values per column, never a whole row or a real value
    sent = json.dumps(payload)
    for row in ROWS:
        for value in row:
            if value and value != "VIP":
                assert value not in sent
    assert all(len(c["samples"]) <= 3 for c in payload["columns"])
    assert payload["columns"][0]["samples"][0] == "xxxx.xxxxxx@xxxxxxx.xx"
    assert "email" in payload["columns"][0]["looks_like"]


def test_a_low_confidence_answer_falls_back_to_the_heuristic(key_in_env: str) -> None:
    with fake_openai() as server:
        server.answer_with(Behaviour(body=response_body(_answer(confidence=0.3, overall=0.55))))
        suggestion = suggest(HEADERS, ROWS, CONTACT_FIELDS, ai=_settings(server.url))
    assert suggestion.method == "heuristic"
    assert suggestion.fallback_reason == "the AI's overall confidence 0.55 is under 0.70"
    assert suggestion.mapping()["E-Mail"] == "email"
    assert len(server.requests) == 1


@pytest.mark.parametrize("behaviour", [
    Behaviour(status=500, body={"error": {"message": f"boom, key {KEY} rejected", "type": "server_error"}}),
    Behaviour(status=200, body='{"id": "resp_x", "output": [{"type": "message", "content": [{"type": "output_text"'),
    Behaviour(status=200, body=response_body({"columns": [{"header": "E-Mail"}], "overall_confidence": "high"})),
    Behaviour(status=200, body=response_body({**_answer(), "columns": _answer()["columns"][:2]})),
    Behaviour(status=200, body=response_body({**_answer(), "columns": [
        {**c, "field": "favourite_colour"} if c["header"] == "Tel" else c for c in _answer()["columns"]]})),
], ids=["http-500", "truncated-json", "wrong-shape", "missing-columns", "unknown-field"])
def test_an_error_answer_falls_back_to_the_heuristic_without_leaking_the_key(
        key_in_env: str, behaviour: Behaviour, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with fake_openai() as server:
        server.answer_with(behaviour)
        suggestion = suggest(HEADERS, ROWS, CONTACT_FIELDS, ai=_settings(server.url))
    assert suggestion.method == "heuristic" and suggestion.fallback_reason
    assert suggestion.mapping()["Tel"] == "phone"
    assert len(server.requests) == (2 if behaviour.status == 500 else 1)  # max_retries=1 bounds the attempts
    assert KEY not in suggestion.fallback_reason and KEY not in caplog.text
    assert "field mapping by the offline heuristic" in caplog.text
    if behaviour.status == 500:
        assert suggestion.fallback_reason.startswith("OpenAI request failed: InternalServerError (HTTP 500)")
        assert "<key>" in suggestion.fallback_reason


def test_the_timeout_bounds_a_slow_server(key_in_env: str) -> None:
    with fake_openai() as server:
        server.answer_with(Behaviour(body=response_body(_answer()), delay=3.0))
        started = time.perf_counter()
        suggestion = suggest(HEADERS, ROWS, CONTACT_FIELDS, ai=_settings(server.url, timeout=0.5, max_retries=0))
        elapsed = time.perf_counter() - started
    assert suggestion.method == "heuristic" and "APITimeoutError" in suggestion.fallback_reason
    assert elapsed < 2.5


def test_errors_raised_by_the_ai_path_never_hold_the_key() -> None:
    with fake_openai() as server:
        server.answer_with(Behaviour(status=401, body={"error": {"message": f"Incorrect API key provided: {KEY[:6]}***{KEY[-4:]}"}}))
        with pytest.raises(AIMappingError) as raised:
            suggest_ai(HEADERS, ROWS, CONTACT_FIELDS, api_key=KEY, model="m", base_url=server.url, timeout=5, max_retries=0)
    text = f"{raised.value!s} {raised.value!r} {raised.value.__cause__!r} {raised.value.__context__!r}"
    assert "AuthenticationError (HTTP 401)" in text
    assert KEY not in text and KEY[-4:] not in text


def test_no_key_means_the_heuristic_and_no_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IPT_OPENAI_KEY", raising=False)
    with fake_openai() as server:
        server.answer_with(Behaviour(body=response_body(_answer())))
        suggestion = suggest(HEADERS, ROWS, CONTACT_FIELDS, ai=_settings(server.url))
    assert suggestion.method == "heuristic" and suggestion.fallback_reason == "no OpenAI API key in $IPT_OPENAI_KEY"
    assert server.requests == []


def test_a_field_answered_twice_stays_with_the_surer_column(key_in_env: str) -> None:
    answer = _answer()
    answer["columns"][3] = {"header": "Notiz", "field": "company", "confidence": 0.5, "alternatives": []}
    with fake_openai() as server:
        server.answer_with(Behaviour(body=response_body(answer)))
        suggestion = suggest(HEADERS, ROWS, CONTACT_FIELDS, ai=_settings(server.url))
    assert suggestion.method == "ai"
    assert suggestion.mapping()["Firma"] == "company" and suggestion.mapping()["Notiz"] == "custom"
    assert suggestion.columns[3].confidence == 0.25 and suggestion.columns[3].candidates[0].field == "company"


def test_masking_keeps_shapes_and_closed_vocabularies() -> None:
    assert mask_value("Jordan Ellis") == "Xxxxxx Xxxxx"
    assert mask_value("+49 30 1234567") == "+99 99 9999999"
    assert mask_value("Germany") == "Germany" and mask_value("yes") == "yes" and mask_value("Dr.") == "Dr."
    assert mask_value("x" * 100).endswith("…") and len(mask_value("x" * 100)) == 41

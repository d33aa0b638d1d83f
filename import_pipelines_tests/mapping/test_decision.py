"""The load decision: thresholds per column and overall, and the message a person acts on."""

from __future__ import annotations

from import_pipelines.mapping import ColumnSuggestion, Suggestion, decide
from import_pipelines.mapping.model import Candidate, overall_confidence


def _suggestion(*confidences: float, method: str = "heuristic") -> Suggestion:
    columns = [ColumnSuggestion(header=f"Col {i}", field="custom" if i else "email", confidence=c,
                                candidates=[Candidate(field="notes", confidence=0.4)]) for i, c in enumerate(confidences)]
    return Suggestion(columns=columns, overall_confidence=overall_confidence(columns), method=method)


def test_a_sure_suggestion_loads() -> None:
    verdict = decide(_suggestion(0.95, 0.8), source="a.csv", template="contacts")
    assert verdict.accepted and verdict.uncertain == [] and verdict.message == ""
    assert verdict.mapping == {"Col 0": "email", "Col 1": "custom"}


def test_one_uncertain_column_stops_the_load_and_names_its_candidates() -> None:
    verdict = decide(_suggestion(0.95, 0.9, 0.55), source="my file.csv", template="contacts", sheet="Leads")
    assert not verdict.accepted and [c.header for c in verdict.uncertain] == ["Col 2"]
    assert "(1 column under 0.60; method heuristic). Nothing was written." in verdict.message
    assert "'Col 2' -> custom (0.55); candidates: notes 0.40" in verdict.message
    assert verdict.command == ("python -m import_pipelines mapping presets save 'my file.csv' --template contacts "
                               "--sheet Leads '--set=Col 2=custom'")


def test_a_low_overall_confidence_stops_the_load_even_when_each_column_passes() -> None:
    verdict = decide(_suggestion(0.62, 0.61), source="a.csv", template="contacts", overall_threshold=0.7)
    assert not verdict.accepted and verdict.uncertain == []
    assert "overall confidence 0.62 < 0.70" in verdict.message
    assert "--set=Col 0=email" in verdict.command  # the weakest columns are offered for correction


def test_a_preset_always_loads() -> None:
    assert decide(_suggestion(1.0, method="preset"), source="a.csv", template="contacts").accepted

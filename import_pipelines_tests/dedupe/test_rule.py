"""The DedupeRule model: defaults, coercion and clear validation messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from import_pipelines.dedupe import DedupeRule, FieldWeight


def test_defaults_and_string_fields_become_weights() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["email", FieldWeight(field="phone", weight=2)],
                      secondary=["first_name"])
    assert (rule.primary_weight, rule.secondary_weight, rule.threshold, rule.phone_country) == (0.8, 0.2, 85, "1")
    assert rule.primary == [FieldWeight(field="email", weight=1.0), FieldWeight(field="phone", weight=2.0)]
    assert rule.kind_of("phone") == "phone"
    assert DedupeRule(strategy="exact", primary=["ref"], field_kinds={"ref": "phone"}).kind_of("ref") == "phone"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"primary": []}, "'primary' must list at least one field"),
    ({"primary_weight": 0.7}, "primary_weight + secondary_weight must be 1"),
    ({"threshold": 0.85}, "threshold is on a 0-100 scale; 0.85 looks like a fraction, write 85"),
    ({"threshold": 120}, "less than or equal to 100"),
    ({"secondary": ["email"]}, "field 'email' is listed more than once"),
    ({"field_kinds": {"fax": "phone"}}, "field_kinds names fields the rule does not use: ['fax']"),
    ({"strategy": "soundex"}, "'exact', 'case_insensitive' or 'fuzzy'"),
    ({"primary": [""]}, "at least 1 character"),
    ({"phone_country": "+1"}, "should match pattern"),
])
def test_invalid_rules_are_refused_with_a_clear_message(kwargs: dict, message: str) -> None:
    arguments = {"strategy": "fuzzy", "primary": ["email"]} | kwargs
    with pytest.raises(ValidationError) as error:
        DedupeRule(**arguments)
    assert message in str(error.value)

"""Normalisation: what counts as the same value under each strategy."""

from __future__ import annotations

import pandas as pd

from import_pipelines.dedupe import DedupeRule, infer_kind, match_against, normalize_values
from import_pipelines.dedupe.comparison import EMAIL_BITS
from import_pipelines.dedupe.normalize import exact_values


def _pair(rule: DedupeRule, left: dict, right: dict):
    incoming = pd.DataFrame([{"id": "in-1", **left}])
    existing = pd.DataFrame([{"id": "ex-1", **right}])
    return match_against(incoming, existing, rule, incoming_id="id", existing_id="id").get("in-1")


def test_email_equal_case_insensitive_but_not_exact() -> None:
    messy, clean = "John.Doe@Example.com ", "john.doe@example.com"
    normalized = normalize_values(pd.Series([messy, clean]), kind="email")
    assert normalized[0] == normalized[1] == "john.doe@example.com"
    raw = exact_values(pd.Series([messy, clean]))
    assert raw[0] != raw[1]

    ci = _pair(DedupeRule(strategy="case_insensitive", primary=["email"]), {"email": messy}, {"email": clean})
    # the same address once normalised: the exact level, all the evidence an address gives
    assert ci is not None and ci.duplicate_of == "ex-1" and ci.levels == {"email": "exact"}
    assert ci.matched_fields == {"email": EMAIL_BITS["exact"]}
    exact = _pair(DedupeRule(strategy="exact", primary=["email"]), {"email": messy}, {"email": clean})
    assert exact is None


def test_phone_formats_reduce_to_the_same_digits_with_default_country() -> None:
    phones = pd.Series(["(555) 010-2000", "+1 555 010 2000", "1-555-010-2000", "555.010.2000 ext. 12",
                        "001 555 010 2000", 5550102000.0])
    assert set(normalize_values(phones, kind="phone", phone_country="1")) == {"15550102000"}
    # Another country's number keeps its own code; a national number with a trunk 0 gets the default.
    other = normalize_values(pd.Series(["+44 20 7946 0958", "020 7946 0958"]), kind="phone", phone_country="44")
    assert list(other) == ["442079460958", "442079460958"]


def test_text_is_trimmed_collapsed_nfkc_and_casefolded() -> None:
    values = pd.Series(["  Zoë \u00a0 Müller ", "ZOË MÜLLER", "Zoe\u0308 Mu\u0308ller", "   ", None, "ﬁnch STRASSE"])
    result = list(normalize_values(values, kind="name"))
    assert result[0] == result[1] == result[2] == "zoë müller"
    assert result[3] is None and result[4] is None
    assert result[5] == "finch strasse"


def test_field_kinds_are_inferred_from_names() -> None:
    assert [infer_kind(name) for name in ["email", "work_email", "mobile_phone", "tel", "first_name", "surname",
                                          "company", "company_name", "username"]] == [
        "email", "email", "phone", "phone", "name", "name", "text", "text", "text"]

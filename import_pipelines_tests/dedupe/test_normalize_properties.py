"""Properties of the dedupe normaliser (hypothesis): what it returns is what it would return again.

For text, names and emails, normalising is idempotent (a normalised value normalises to itself,
so a stored value compares equal to its own normalisation); missing values (None, empty,
blank) are all ``None``; the comparison value does not depend on letter case (for letters whose
upper and lower case fold alike: Turkish dotless i does not) or on the spacing around and
between words (text, name) or anywhere (email). A phone is digits only, keeps every digit of the
number it came from, and is stable once it carries its country code (``+`` and the digits
normalise to the same digits); a national number is not idempotent by design, since each pass
prepends the default country code.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from import_pipelines.dedupe import normalize_values

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
LETTERS = st.characters(whitelist_categories=("Ll", "Lu", "Nd")).filter(
    lambda c: c.upper().casefold() == c.lower().casefold() == c.casefold() and c.upper().lower() == c.lower())
WORDS = st.lists(st.text(alphabet=LETTERS, min_size=1, max_size=8), min_size=1, max_size=4)
SPACES = st.text(alphabet=" \t\u00a0\n", min_size=1, max_size=3)


def norm(values: list, kind: str) -> list:
    return list(normalize_values(pd.Series(values, dtype=object), kind=kind))


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, max_size=10), st.sampled_from(["text", "name", "email", "phone"]))
def test_normalising_is_idempotent(values: list[str], kind: str) -> None:
    once = norm(values, kind)
    assert all(v is None or (isinstance(v, str) and v and v == v.strip()) for v in once)
    if kind == "phone":
        numbers = [v for v in once if v is not None]
        assert all(v.isdigit() for v in numbers)
        assert norm(["+" + v for v in numbers], kind) == numbers
    else:
        assert norm(once, kind) == once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), SPACES, st.just("")), max_size=5), st.sampled_from(["text", "name", "email"]))
def test_missing_values_are_none(values: list, kind: str) -> None:
    assert norm(values, kind) == [None] * len(values)


@settings(max_examples=300, deadline=None)
@given(WORDS, SPACES, SPACES, st.sampled_from(["text", "name"]))
def test_text_ignores_case_and_spacing(words: list[str], gap: str, edge: str, kind: str) -> None:
    spaced = edge + gap.join(words) + edge
    plain = " ".join(words)
    assert norm([spaced, plain.upper(), plain.lower()], kind) == [norm([plain], kind)[0]] * 3


@settings(max_examples=200, deadline=None)
@given(WORDS, st.sampled_from(["example.org", "Mail.EXAMPLE.com"]), SPACES)
@example(["\u03f2"], "example.org", "\u00a0")  # the lunate sigma: NFKC of its capital and of it differ
def test_email_ignores_case_and_any_whitespace(words: list[str], domain: str, gap: str) -> None:
    address = ".".join(words) + "@" + domain
    messy = gap + address.upper().replace("@", gap + "@") + gap
    assert norm([messy], "email") == norm([address.lower()], "email")
    if address.isascii():
        assert norm([messy], "email") == [address.lower()]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=7, max_size=12), st.sampled_from(["{}", "({}) ", "+{}", "{}-", "{} "]))
def test_phone_is_digits_and_keeps_the_number(digits: str, shape: str) -> None:
    [phone] = norm([shape.format(digits[:3]) + digits[3:]], "phone")
    assert phone is not None and phone.isdigit() and phone.endswith(digits.lstrip("0"))

"""What a column's sample values look like: emails, phones, dates, postcodes, countries, ids...

:func:`profile_column` reads a handful of values (typed as a source types them, or strings) and
says which share of the non-empty ones looks like each kind. The heuristic uses the shares to
confirm a header ("Tel" full of phone numbers), to overrule it (a "Title" column full of "Mr."
and "Dr." is a salutation, not a job title) and to map a column whose header says nothing
("CC" full of ISO country codes).

The tests are regular expressions and small vocabularies rather than a parser per kind: sniffing
has to be fast (200 columns x 50 values well under a second) and only needs to be right about
most values of a column, never about each one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from import_pipelines.mapping.normalize import ascii_fold, header_words

KINDS = ("email", "url", "phone", "date", "postcode", "country", "state", "boolean", "number", "integer", "id",
         "salutation", "ip", "name", "street", "list", "long_text")

# how an exporting tool writes "no value" besides an empty cell (Outlook writes 0/0/00 for empty dates)
_EMPTY_MARKERS = frozenset({"", "0/0/00", "0000-00-00", "0000-00-00 00:00:00", "null", "none", "n/a", "#n/a", "-", "--"})

_EMAIL = re.compile(r"^(mailto:)?[^@\s,;]+@[^@\s,;]+\.[a-z]{2,}$", re.IGNORECASE)
_URL_SCHEME = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)
_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.([a-z]{2,})(/\S*)?$", re.IGNORECASE)
_TLDS = frozenset({
    "com", "net", "org", "io", "co", "info", "biz", "app", "dev", "ai", "me", "tv", "eu", "de", "uk", "fr", "es", "it",
    "nl", "be", "ch", "at", "us", "ca", "au", "nz", "jp", "cn", "in", "br", "mx", "ar", "cl", "pt", "pl", "se", "no",
    "dk", "fi", "ie", "ru", "za", "edu", "gov", "shop", "store", "online", "site", "tech", "example",
})
_IPV4 = re.compile(r"^(\d{1,3}\.){3}\d{1,3}$")
_PHONE = re.compile(r"^(?:[a-z]{2,12}\s?:\s*)?\+?[\d\s().\-/]{6,}(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?$", re.IGNORECASE)
_ISO_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s?(?:Z|[+-]\d{2}:?\d{2}))?)?$")
_NUMERIC_DATE = re.compile(r"^\d{1,2}[./-]\d{1,2}[./-](?:\d{2}|\d{4})(?:,?\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?)?$",
                           re.IGNORECASE)
_PARTIAL_DATE = re.compile(r"^\d{1,2}/\d{1,2}$|^\d{1,2}\.\d{1,2}\.$")  # a birthday without its year: 07/21, 21.07.
_MONTHS = ("jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|januar|februar|marz|mai|juni|juli|okt|dez|janv|fevr|"
           "mars|avr|juin|juil|aout|sept|oct|nov|dec|ene|abr|ago|dic")
_WORDY_DATE = re.compile(rf"^(?:\d{{1,2}}\.?\s+(?:{_MONTHS})[a-z]*\.?,?\s+\d{{2,4}}|(?:{_MONTHS})[a-z]*\.?\s+\d{{1,2}},?\s+\d{{2,4}})"
                         r"(?:\s+\d{1,2}:\d{2}.*)?$", re.IGNORECASE)
_POSTCODES = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"^\d{5}(?:-\d{4})?$",            # US ZIP, DE, FR, ES, IT
    r"^\d{4}$",                       # AT, CH, BE, DK, NO, AU, NZ
    r"^\d{3}-\d{4}$",                 # JP
    r"^\d{3} ?\d{2}$",                # SE, CZ, SK, GR
    r"^\d{2}-\d{3}$",                 # PL
    r"^\d{4}-\d{3}$",                 # PT
    r"^\d{5}-\d{3}$",                 # BR
    r"^\d{6}$",                       # IN, CN, RU, SG
    r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$",  # UK
    r"^[A-Z]\d[A-Z] ?\d[A-Z]\d$",     # CA
    r"^\d{4} ?[A-Z]{2}$",             # NL
    r"^[A-Z]\d{2} ?[A-Z\d]{4}$",      # IE (Eircode)
    r"^[A-Z]{2,3} \d{4}$",            # AU with its state: VIC 3000
))
_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:[ ,.']\d{3})+|\d+)(?:[.,]\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-:.=/+]*$")
_NAME = re.compile(r"^[^\W\d_][^\W\d_'’.\-]*\.?(?:[\s'’\-][^\W\d_][^\W\d_'’.\-]*\.?){0,4}$")
_HAS_DIGIT = re.compile(r"\d")
_ALPHA_WORD = re.compile(r"[^\W\d_]{3,}")
_LIST_SEPARATORS = re.compile(r"\s*(?:,|;|\||:::)\s*")

_SALUTATIONS = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "herr", "frau", "fraulein", "m", "mme", "mlle",
    "monsieur", "madame", "mademoiselle", "sr", "sra", "srta", "don", "dona", "senor", "senora", "dhr", "mevr",
    "sig", "sigra", "mr dr", "herr dr", "frau dr",
})
_BOOLEANS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f", "ja", "nein", "oui", "non", "si", "wahr",
                       "falsch", "verdadero", "falso", "x", "checked", "unchecked", "on", "off"})

# declared database types that settle what a column holds
_TYPE_KINDS = (("timestamp", "date"), ("date", "date"), ("bool", "boolean"), ("int", "integer"), ("serial", "integer"),
               ("numeric", "number"), ("decimal", "number"), ("real", "number"), ("double", "number"),
               ("float", "number"), ("money", "number"), ("uuid", "id"), ("inet", "ip"))


@dataclass(frozen=True)
class ColumnProfile:
    """The sniffed shape of one column's sample."""

    rows: int                      # sample rows seen
    filled: int                    # non-empty values among them
    shares: dict[str, float] = field(default_factory=dict)  # kind -> share of the non-empty values
    distinct: float = 0.0          # distinct non-empty values / non-empty values
    sequence: bool = False         # 1, 2, 3, ... in sample order: a row number
    words: tuple[str, ...] = ()    # the normalised words of a low-cardinality column of short labels ("Mobile")
    declared: str | None = None    # the kind a database type settles, if any

    def share(self, kind: str) -> float:
        """The share of non-empty values of ``kind`` (0 when the column is empty)."""
        return self.shares.get(kind, 0.0)

    @property
    def fill_rate(self) -> float:
        """Non-empty values / sample rows."""
        return self.filled / self.rows if self.rows else 0.0

    @property
    def empty(self) -> bool:
        """True when the sample has rows and none has a value here."""
        return self.rows > 0 and self.filled == 0


def is_empty(value: Any) -> bool:
    """True for None, blank strings and the "no value" markers exporting tools write."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().casefold() in _EMPTY_MARKERS
    return False


def profile_column(values: Iterable[Any], *, declared_type: str | None = None) -> ColumnProfile:
    """Sniff ``values`` (one column of the sample, in row order); ``declared_type`` is a database type name."""
    values = list(values)
    filled = [v for v in values if not is_empty(v)]
    declared = _declared_kind(declared_type)
    if not filled:
        return ColumnProfile(rows=len(values), filled=0, declared=declared)
    counts: Counter[str] = Counter()
    for value in filled:
        counts.update(value_kinds(value))
    if declared is not None:
        counts[declared] = len(filled)
        if declared == "date":
            counts.pop("phone", None)
    shares = {kind: counts[kind] / len(filled) for kind in counts}
    texts = [_text(v) for v in filled]
    distinct = len(set(texts)) / len(filled)
    return ColumnProfile(rows=len(values), filled=len(filled), shares=shares, distinct=distinct,
                         sequence=_is_sequence(filled), words=_label_words(texts), declared=declared)


def value_kinds(value: Any) -> set[str]:
    """Every kind one value looks like (a value can be several: ``"12345"`` is a postcode, a number and an id)."""
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, (dt.date, dt.datetime)):
        return {"date"}
    if isinstance(value, int):
        return {"integer", "number", "id"} | ({"boolean"} if value in (0, 1) else set())
    if isinstance(value, (float, Decimal)):
        return {"number"}
    if isinstance(value, (list, tuple)):
        return {"list"}
    text = _text(value).lstrip("'")  # spreadsheets keep "'02134" as text
    return _string_kinds(text)


@lru_cache(maxsize=65536)
def _string_kinds(text: str) -> frozenset[str]:
    kinds: set[str] = set()
    folded = ascii_fold(text).casefold().strip()
    bare = folded.rstrip(".")
    if _EMAIL.match(text):
        return frozenset({"email"})
    if _IPV4.match(text):
        return frozenset({"ip"})
    if _URL_SCHEME.match(text) or (_DOMAIN.match(text) and _DOMAIN.match(text).group(2).casefold() in _TLDS):
        return frozenset({"url"})
    if _ISO_DATE.match(text) or _NUMERIC_DATE.match(text) or _WORDY_DATE.match(folded):
        kinds.add("date")
    elif _PARTIAL_DATE.match(text):
        kinds.add("date")
    if bare in _BOOLEANS:
        kinds.add("boolean")
    if bare in _SALUTATIONS:
        kinds.add("salutation")
    if _NUMBER.match(text):
        kinds.add("number")
    if _INTEGER.match(text):
        kinds.add("integer")
    if any(p.match(text) for p in _POSTCODES):
        kinds.add("postcode")
    digits = sum(ch.isdigit() for ch in text)
    decimal = "number" in kinds and ("." in text or "," in text)  # "33.749", not "915 550 101"
    if not kinds & {"date"} and not decimal and _PHONE.match(text) and 6 <= digits <= 15 and (
            text.lstrip().startswith(("+", "0", "(")) or not _INTEGER.match(text.strip()) or digits >= 10):
        kinds.add("phone")
    if folded in _countries():
        kinds.add("country")
    if folded in _states():
        kinds.add("state")
    if not decimal and "date" not in kinds and (
            (_ID.match(text) and _HAS_DIGIT.search(text) and " " not in text) or _looks_like_hex_id(text)):
        kinds.add("id")
    if _NAME.match(text.strip()) and not kinds & {"salutation", "boolean"}:
        kinds.add("name")
    if _HAS_DIGIT.search(text) and _ALPHA_WORD.search(text) and len(text) <= 80 and not kinds & {"date", "phone", "id"}:
        kinds.add("street")
    if len(_LIST_SEPARATORS.split(text.strip())) > 1 and len(text) <= 120:
        kinds.add("list")
    if len(text) >= 30 and text.count(" ") >= 4:
        kinds.add("long_text")
    return frozenset(kinds)


def _looks_like_hex_id(text: str) -> bool:
    return len(text) >= 8 and re.fullmatch(r"[0-9a-f\-]+", text, re.IGNORECASE) is not None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else str(value)


def _is_sequence(values: list[Any]) -> bool:
    """1, 2, 3... (or 0, 1, 2...) in row order: a row number rather than data."""
    numbers: list[int] = []
    for value in values:
        text = _text(value).rstrip(".")
        if isinstance(value, bool) or not _INTEGER.match(text):
            return False
        numbers.append(int(text))
    return len(numbers) >= 2 and numbers[0] in (0, 1) and all(b - a == 1 for a, b in zip(numbers, numbers[1:]))


def _label_words(texts: list[str]) -> tuple[str, ...]:
    """The words of the most common value when the column holds a few short labels ("* Work", "Mobile")."""
    if not texts or max(len(t) for t in texts) > 20:
        return ()
    most_common, count = Counter(texts).most_common(1)[0]
    if count * 2 < len(texts) and len(set(texts)) > 2:
        return ()
    return header_words(most_common)


def _declared_kind(declared_type: str | None) -> str | None:
    if not declared_type:
        return None
    name = declared_type.casefold()
    for fragment, kind in _TYPE_KINDS:
        if fragment in name:
            return kind
    return None


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    """Country names (English, German, French, Spanish, Dutch, Italian, Portuguese) and ISO codes, folded."""
    import gettext

    import pycountry

    names: set[str] = {"usa", "u.s.a.", "u.s.a", "us", "uk", "u.k.", "great britain", "england", "scotland", "wales",
                       "america", "holland", "deutschland", "brd", "espana", "schweiz", "suisse", "osterreich"}
    translations = [gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang], fallback=True)
                    for lang in ("de", "fr", "es", "nl", "it", "pt")]
    for country in pycountry.countries:
        english = [getattr(country, attr, None) for attr in ("name", "common_name", "official_name")]
        for name in filter(None, english):
            names.add(ascii_fold(name).casefold())
            for translation in translations:
                names.add(ascii_fold(translation.gettext(name)).casefold())
        names.add(country.alpha_2.casefold())
        names.add(country.alpha_3.casefold())
    return frozenset(names)


@lru_cache(maxsize=1)
def _states() -> frozenset[str]:
    """Subdivision names (states, provinces, regions, counties) and their codes without the country prefix."""
    import pycountry

    names: set[str] = set()
    for subdivision in pycountry.subdivisions:
        names.add(ascii_fold(subdivision.name).casefold())
        names.add(subdivision.code.split("-", 1)[1].casefold())
    return frozenset(names)

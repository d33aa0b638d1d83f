"""Header names reduced to comparable words.

``"E-Mail-Adresse"``, ``"EmailAddress"``, ``"email_address"`` and ``"E-mail 1 - Value"`` all
become lists of lower-case ASCII words (``["email", "adresse"]``, ``["email", "address"]``,
``["email", "1", "value"]``): accents dropped, camelCase and snake_case split, numbers set apart
as their own words, ``#`` / ``Nº`` / ``N°`` read as "number", and the few spellings that split
one word in two (``e mail``) joined again.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_PLURAL_ACRONYM = re.compile(r"(?<=[A-Z]{2})s\b")  # "IDs", "URLs"
_CAMEL_LOWER_UPPER = re.compile(r"(?<=[a-z])(?=[A-Z])")
_CAMEL_ACRONYM = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_WORDS = re.compile(r"[a-z0-9]+")

# words that one spelling splits and another does not
_JOINS = {("e", "mail"): "email", ("e", "mails"): "emails", ("zip", "code"): "zipcode", ("post", "code"): "postcode",
          ("web", "site"): "website", ("home", "page"): "homepage", ("web", "page"): "webpage",
          ("n", "number"): "number"}

# marks read as "number": "#", "Nº" (NFKD turns it into "No"), "N°", "Nr."
_NUMBER_MARKS = re.compile(r"[#№°]")

# fixed phrases some tools put in front of their system columns, meaningless for matching
_NOISE_PHRASES: tuple[tuple[str, ...], ...] = ()


def ascii_fold(text: str) -> str:
    """``text`` without accents (NFKD, combining marks dropped); ``ß`` stays for casefold to expand."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=65536)
def header_words(header: str) -> tuple[str, ...]:
    """The words of ``header``, normalised as the module docstring describes."""
    text = _NUMBER_MARKS.sub(" number ", ascii_fold(str(header)))
    text = _PLURAL_ACRONYM.sub("", text)
    text = _CAMEL_LOWER_UPPER.sub(" ", text)
    text = _CAMEL_ACRONYM.sub(" ", text)
    text = _LETTER_DIGIT.sub(" ", text)
    words = _WORDS.findall(text.casefold())
    words = [w for w in words if w != "s"]  # "Manager's" -> "manager"
    joined: list[str] = []
    for word in words:
        if joined and (joined[-1], word) in _JOINS:
            joined[-1] = _JOINS[(joined[-1], word)]
        else:
            joined.append(word)
    for phrase in _NOISE_PHRASES:
        for start in range(len(joined) - len(phrase) + 1):
            if tuple(joined[start:start + len(phrase)]) == phrase:
                joined = joined[:start] + joined[start + len(phrase):]
                break
    return tuple(joined)


def normalize_header(header: str) -> str:
    """The header as one normalised string (its words joined by spaces): the unit of presets."""
    return " ".join(header_words(header))

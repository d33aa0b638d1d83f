"""Comparison levels per field kind, and the evidence (in bits) each level is worth.

A pair of values is put in one *level* of its field kind, best first; the level's weight is the
log2 Bayes factor ``log2(m / u)`` of Fellegi-Sunter record linkage: ``m`` is how often two records
of one person show that level, ``u`` how often two records of different people do. Positive
weights are evidence for a match, negative ones against; a value missing on either side is no
level at all and weighs 0.

| kind | level | bits | why |
|---|---|---|---|
| email | ``exact`` (normalised) | 16 - log2(n - 1) | a mailbox belongs to one person: alone it makes a pair 98 % likely; n = records holding it, so a shared family or team mailbox weighs less |
| email | ``role`` (``info@``, ``support@``, ``family@`` ... the same address) | 3 - log2(n - 1) | a role's mailbox is read by a team or a household; other levels do not apply to it |
| email | ``same_mailbox`` (a ``+tag`` aside; dots too at Gmail) | 12 | the provider delivers both to one mailbox |
| email | ``digits_differ`` | -6 | ``name2@`` beside ``name@``: how providers hand out a second account, usually to a second person |
| email | ``typo`` (one transposed or dropped letter in the local part as written, no digit touched, same domain) | 8 (4 when short) | a slip of the keyboard in a long name is rarely another person's address |
| email | ``separators`` (only dots, ``_``, ``-`` differ) | 2 | ``john.smith@`` and ``johnsmith@`` are two mailboxes, often two people |
| email | ``other_domain`` (same mailbox name) | 1.5 - log2(n - 1) | the same name at another provider; n = records with that mailbox name |
| email | ``substituted`` (one letter replaced, no digit touched, same domain) | 5 | a slip of the keyboard; ``jan.smith`` / ``jon.smith`` are told apart by their names (a contradicting name vetoes) |
| email | ``else`` | -2 | people do have several addresses |
| phone | ``exact`` (digits with country code) | 10 - log2(n - 1) | weaker than an address: households and offices share a line more often than a mailbox; a line shared by n records weighs less still |
| phone | ``last7`` | 3 | the same line written with another area or country code |
| phone | ``else`` | -1 | people have several numbers |
| name | ``exact`` | log2(0.9 / p), 1 to 9 | term frequency: p is the smoothed frequency of the name, so "Thomas" counts little and "Siobhán" much |
| name | ``translit`` (same letters after transliteration: accents, scripts, case, spacing) | as ``exact`` - 1 | ``Müller`` / ``Muller`` / ``MUELLER``, ``Дмитрий`` / ``Dmitriy`` |
| name | ``nickname`` | 3.5 | ``Bob`` / ``Robert`` (the ``nicknames`` dataset) |
| name | ``part`` (the words of one are some of the other's) | 2 | ``García`` / ``García López``, ``Anna`` / ``Anna M.`` |
| name | ``typo`` (Jaro-Winkler >= 0.9, or one edit in four letters or more, not of the first) | 2.5 | |
| name | ``initial`` | 0.5 | ``J.`` / ``John`` |
| name | both names agree | at most log2(0.9 / p) of the full name, 2 to 16 | given and family name are not independent: "Li Na" or "Maria Garcia" are common as pairs |
| name | ``else`` | -8 | a different given name sharing an address is a relative or a colleague; it also vetoes a match (see :mod:`.matching`); so does a generational suffix (``Jr.``, ``III``) on one side only, or two different ones |

| text | ``exact`` | log2(0.9 / p), 0.5 to 4 (secondary); 12 - log2(n - 1) (primary) | a primary text field identifies, a secondary one describes |
| text | ``similar`` (Jaro-Winkler >= 0.9) | 1 | |
| text | ``else`` | -0.5 (secondary), -2 (primary) | |

Under the ``exact`` and ``case_insensitive`` strategies only ``exact`` and ``else`` exist.

Names are compared by their words in Latin letters (:func:`name_words`): titles (``Dr.``,
``Mrs``) dropped, a generational suffix set apart. No one-edit level touches the first letter
of a mailbox name or of a name ("jsmith" / "msmith", "Linh" / "Minh" are two people), nor is a
substituted last letter of a mailbox name a slip ("smithj" / "smithk": initials sit at either
end of a mailbox name).

Pairs whose values are equal are found vectorised; only the unequal ones take the per-pair
path, which reads per-value features (mailbox parts, transliterations) from caches, since
names and addresses repeat across pairs.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
from rapidfuzz.distance import JaroWinkler

from import_pipelines.dedupe.normalize import FieldKind

Counts = Callable[[str, np.ndarray], np.ndarray]
"""``counts(namespace, values)``: how many records of the population hold each value (>= 1)."""

PRIOR_BITS = -10.0
"""Log2 odds of a match before any evidence: about one pair in a thousand blocked pairs."""

EMAIL_BITS = {"exact": 16.0, "role": 3.0, "same_mailbox": 12.0, "digits_differ": -6.0, "typo": 8.0, "typo_short": 4.0,
              "separators": 2.0, "other_domain": 1.5, "substituted": 5.0, "else": -2.0}
# providers that deliver mail whatever the dots in the mailbox name
DOTS_IGNORED = frozenset({"gmail.com", "googlemail.com"})
PHONE_BITS = {"exact": 10.0, "last7": 3.0, "else": -1.0}
NAME_BITS = {"nickname": 3.5, "part": 2.0, "typo": 2.5, "initial": 0.5, "else": -8.0}
TEXT_BITS = {"similar": 1.0, "else": -0.5}
PRIMARY_TEXT_BITS = {"exact": 12.0, "else": -2.0}

NAME_M = 0.9  # how often two records of one person agree exactly on a name
NAME_PRIOR_FREQUENCY = 0.01  # a name's frequency before the data says otherwise
NAME_PRIOR_WEIGHT = 500.0  # in records: small populations lean on the prior frequency
NAME_RANGE = (1.0, 9.0)
FULL_NAME_PRIOR_FREQUENCY = 1e-4  # a full name's frequency before the data says otherwise
FULL_NAME_PRIOR_WEIGHT = 1000.0  # in records: a few hundred records say little about one full name
FULL_NAME_RANGE = (2.0, 16.0)
TEXT_RANGE = (0.5, 4.0)
REFERENCE_POPULATION = 10_000  # records: PRIOR_BITS are the prior odds of a pair in a population this size
TYPO_MIN_LETTERS = 5  # shorter mailbox names are too easily another person's after one edit
JARO_WINKLER_SIMILAR = 0.9

_CACHE = 1 << 16  # values per cache: a few MB each, bounded whatever the table size
# pairs of names: a call works out each distinct pair once, so few repeat beyond it
_PAIR_CACHE = 1 << 12
_VALUE_CACHES: list[Callable] = []
_SEPARATORS = re.compile(r"[._\-]")
_NAME_SPLIT = re.compile(r"[\s,]+")
TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "herr", "frau", "mme", "mlle"})
GENERATIONS = {"jr": "jr", "junior": "jr", "sr": "sr", "senior": "sr", "ii": "ii", "2nd": "ii", "iii": "iii",
               "3rd": "iii", "iv": "iv", "4th": "iv"}
# mailboxes of a role, not of a person: a team, an office or a family reads them
ROLE_MAILBOXES = frozenset({
    "info", "office", "support", "sales", "contact", "admin", "hello", "team", "help", "helpdesk", "billing",
    "accounts", "accounting", "service", "customerservice", "enquiries", "inquiries", "mail", "post", "reception",
    "hr", "jobs", "marketing", "noreply", "webmaster", "family", "home", "orders", "shop", "booking", "bookings"})


def identifier_penalty(counts: np.ndarray) -> np.ndarray:
    """Bits taken off an identifier held by ``n`` records: ``log2(n - 1)`` (none for one or two)."""
    return np.log2(np.maximum(counts - 1, 1).astype(np.float64))


def frequency_bits(counts: np.ndarray, *, population: int, bounds: tuple[float, float],
                   prior: float = NAME_PRIOR_FREQUENCY, prior_weight: float = NAME_PRIOR_WEIGHT) -> np.ndarray:
    """Term-frequency weight of an exact agreement: ``log2(m / p)``, clipped to ``bounds``.

    ``p`` is the value's frequency, smoothed towards ``prior`` by ``prior_weight`` pseudo-records,
    so that a name seen twice among five records is not taken for a common one.
    """
    frequency = (counts + prior_weight * prior) / (population + prior_weight)
    return np.clip(np.log2(NAME_M / frequency), *bounds)


IDENTIFYING_LEVELS = frozenset({"exact", "same_mailbox", "typo", "typo_short", "substituted", "last7"})
"""Levels of an address or a phone that point at one person (not ``role``, not ``other_domain``,
whose mailbox name is made of the person's name)."""


def population_correction(population: int) -> float:
    """Bits taken off a pair's name evidence when nothing but names links it: ``log2(N / 10,000)``.

    :data:`PRIOR_BITS` are the prior odds of a pair in a population of
    :data:`REFERENCE_POPULATION` records. Two records that share a name are less likely to be
    one person in a larger population (there are more namesakes), while two that share a
    mailbox or a line are not: there, the prior odds and the identifier's rarity shrink
    together. So the correction applies once per pair, to pairs without an identifying level.
    """
    return max(0.0, math.log2(population / REFERENCE_POPULATION)) if population > 0 else 0.0


def value_cache(maxsize: int = _CACHE) -> Callable[[Callable], Callable]:
    """An LRU cache of a per-value feature (an address's parts, a name's words), emptied by :func:`clear_value_caches`.

    Names and addresses repeat across the pairs of a table, so a feature is worked out once for
    up to ``maxsize`` values and read back after.
    """
    def decorate(function: Callable) -> Callable:
        cached = lru_cache(maxsize=maxsize)(function)
        _VALUE_CACHES.append(cached)
        return cached
    return decorate


def clear_value_caches() -> None:
    """Empty every cache of :func:`value_cache`.

    The in-memory engine keeps them full: its tables are in memory anyway, and a value met again
    anywhere in them is read back. The streaming path empties them as each chunk starts, so that
    what it holds is one chunk's values and never grows with the table; within a chunk, where a
    name or an address meets most of its pairs, they still work each value out once.
    """
    for cached in _VALUE_CACHES:
        cached.cache_clear()


# -- per-value features ---------------------------------------------------------------------------

@value_cache()
def email_parts(address: str) -> tuple[str, str, str, str, str]:
    """``(local, domain, mailbox, letters, digits)`` of a normalised address.

    ``local`` is the local part without a ``+tag`` (and without dots where the provider ignores
    them); ``mailbox`` is it without dots, underscores and hyphens; ``letters`` and ``digits``
    split the mailbox.
    """
    local, _, domain = address.rpartition("@") if "@" in address else (address, "", "")
    local = local.partition("+")[0]
    if domain in DOTS_IGNORED:
        local = local.replace(".", "")
    mailbox = _SEPARATORS.sub("", local)
    letters = "".join(c for c in mailbox if not c.isdigit())
    digits = "".join(c for c in mailbox if c.isdigit())
    return local, domain, mailbox, letters, digits


def full_name(first: str, last: str) -> str:
    """Given and family name as one counted form, in either order (``li na`` = ``na li``)."""
    a, b = name_letters(first), name_letters(last)
    return f"{a} {b}" if a <= b else f"{b} {a}"


def email_mailbox(address: str) -> str:
    """The mailbox name of an address (see :func:`email_parts`); term frequencies count it."""
    return email_parts(address)[2]


@value_cache()
def name_words(name: str) -> tuple[tuple[str, ...], str]:
    """The words of a name in lower-case Latin letters, and its generational suffix (``jr``, ``ii`` ...).

    Transliterated, accents and punctuation gone (``Дмитрий`` -> ``dmitriy``, ``O'Brien`` ->
    ``obrien``); a leading title (``Dr.``, ``Mrs``) is dropped, a trailing ``Jr.``, ``Sr.`` or
    ``III`` is returned apart: it tells a father from his son, not a person from a typo.
    """
    from anyascii import anyascii

    text = name if name.isascii() else anyascii(unicodedata.normalize("NFKC", name))
    words = [w for w in ("".join(c for c in word if c.isalnum()) for word in _NAME_SPLIT.split(text.lower())) if w]
    suffix = ""
    if len(words) > 1 and words[-1] in GENERATIONS:
        suffix = GENERATIONS[words.pop()]
    while len(words) > 1 and words[0] in TITLES:
        words.pop(0)
    return tuple("".join(c for c in w if c.isalpha()) for w in words if any(c.isalpha() for c in w)), suffix


@value_cache()
def name_letters(name: str) -> str:
    """A name reduced to its lower-case Latin letters (see :func:`name_words`), its suffix aside.

    ``Müller`` -> ``muller``, ``Dr. O'Brien Jr.`` -> ``obrien``.
    """
    return "".join(name_words(name)[0])


@value_cache()
def _umlauts_folded(letters: str) -> str:
    return re.sub(r"(?<=[^aeiou])([aou])e", r"\1", letters)


def one_edit(a: str, b: str) -> tuple[str, int] | None:
    """``(kind, position)`` when ``a`` and ``b`` are one edit apart: a ``transposition``, a
    ``dropped`` character or one ``substituted`` for another, at ``position``."""
    if a == b:
        return None
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        if len(diff) == 1:
            return "substituted", diff[0]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
            return "transposition", diff[0]
        return None
    if abs(len(a) - len(b)) != 1:
        return None
    short, long = (a, b) if len(a) < len(b) else (b, a)
    k = 0
    while k < len(short) and short[k] == long[k]:
        k += 1
    return ("dropped", k) if short[k:] == long[k + 1:] else None


@lru_cache(maxsize=1)
def nickname_groups() -> dict[str, frozenset[str]]:
    """Given name -> the names it is a nickname of and its own nicknames (``bob`` -> robert).

    From the ``nicknames`` dataset (a hand-curated CSV of English given names and their
    nicknames). Only direct relations count: two names that share a nickname, or are both
    nicknames of a third, are not related by it ("Kit" stands for Christopher and for
    Katherine; "Betty" and "Lisa" are both short for Elizabeth, and usually two people).
    """
    import csv

    from nicknames import with_names_csv_path

    related: dict[str, set[str]] = {}
    with with_names_csv_path() as path, open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name, nick = row["name1"].lower(), row["name2"].lower()
            related.setdefault(name, set()).add(nick)
            related.setdefault(nick, set()).add(name)
    return {name: frozenset(names - {name}) for name, names in related.items()}


# -- levels ---------------------------------------------------------------------------------------

def is_role_mailbox(address: str) -> bool:
    """Whether an address names a role (``info@``, ``support@``, ``family@``) rather than a person."""
    return email_parts(address)[2] in ROLE_MAILBOXES


def email_level(a: str, b: str) -> str:
    """The level of two unequal normalised addresses (see the module table)."""
    local_a, domain_a, mailbox_a, letters_a, digits_a = email_parts(a)
    local_b, domain_b, mailbox_b, letters_b, digits_b = email_parts(b)
    if local_a == local_b and domain_a == domain_b and local_a:
        return "role" if mailbox_a in ROLE_MAILBOXES else "same_mailbox"
    if mailbox_a in ROLE_MAILBOXES or mailbox_b in ROLE_MAILBOXES:
        return "else"
    if mailbox_a == mailbox_b and domain_a == domain_b and mailbox_a:
        # john.smith@ and johnsmith@ are two mailboxes at most providers, often two people
        return "separators"
    if letters_a == letters_b and digits_a != digits_b and letters_a:
        return "digits_differ"
    if mailbox_a == mailbox_b and len(mailbox_a) >= 4:
        return "other_domain"
    if domain_a == domain_b and digits_a == digits_b:
        # one edit of the local part as written: a slip beside a changed separator is two edits.
        # The first character is no slip: "jsmith" and "msmith" are an initial and a surname,
        # two people; nor is another last letter ("smithj", "smithk"), nor a letter in place of
        # a separator ("debora.miller", "deborahmiller")
        edit = one_edit(local_a, local_b)
        if edit is None or edit[1] == 0:
            return "else"
        kind, at = edit
        shortest = min(len(letters_a), len(letters_b))
        if kind in ("transposition", "dropped"):
            return "typo" if shortest >= TYPO_MIN_LETTERS else "typo_short"
        if (kind == "substituted" and shortest >= TYPO_MIN_LETTERS and at < len(local_a) - 1
                and local_a[at].isalpha() and local_b[at].isalpha()):
            return "substituted"
    return "else"


def phone_level(a: str, b: str) -> str:
    """The level of two unequal normalised phone numbers."""
    return "last7" if len(a) >= 7 and a[-7:] == b[-7:] else "else"


@value_cache(_PAIR_CACHE)
def name_level(a: str, b: str) -> str:
    """The level of two unequal normalised names."""
    (words_a, suffix_a), (words_b, suffix_b) = name_words(a), name_words(b)
    if suffix_a != suffix_b:
        return "else"  # "Jr." beside none or "Sr.": two generations of one family
    la, lb = "".join(words_a), "".join(words_b)
    if la == lb or (la and _umlauts_folded(la) == _umlauts_folded(lb)):
        return "translit" if la else "else"
    if not la or not lb:
        return "else"
    if lb in nickname_groups().get(la, ()):
        return "nickname"
    if (len(la) == 1 or len(lb) == 1) and la[0] == lb[0]:
        return "initial"
    # "García" of "García López", "Anna" of "Anna M.": the shorter name is some of the longer's
    # words. Two full forms that differ ("García López", "García Ruiz") are two people
    shorter, longer = sorted((words_a, words_b), key=len)
    if len(shorter) < len(longer) and set(shorter) <= set(longer) and any(len(w) > 1 for w in shorter):
        return "part"
    if min(len(la), len(lb)) >= 3 and JaroWinkler.similarity(la, lb) >= JARO_WINKLER_SIMILAR:
        return "typo"
    # one edit, but never of the first letter: "Linh" and "Minh", "Dan" and "Jan" are two names
    edit = one_edit(la, lb) if min(len(la), len(lb)) >= 4 else None
    if edit is not None and edit[1] > 0:
        return "typo"
    return "else"


def text_level(a: str, b: str) -> str:
    """The level of two unequal normalised texts."""
    return "similar" if JaroWinkler.similarity(a, b) >= JARO_WINKLER_SIMILAR else "else"


_LEVEL_OF: dict[FieldKind, Callable[[str, str], str]] = {
    "email": email_level, "phone": phone_level, "name": name_level, "text": text_level}


def tf_namespaces(kind: FieldKind, field: str) -> dict[str, Callable[[str], str]]:
    """The term-frequency counts a field of ``kind`` needs: namespace -> the form that is counted.

    Names share one namespace, so a name counts the same as a given or a family name (a pair
    scored with the names crossed reads the same counts).
    """
    if kind == "email":
        return {f"{field}:address": str, f"{field}:mailbox": email_mailbox}
    if kind == "name":
        return {"names:letters": name_letters}
    if kind == "phone":
        return {f"{field}:number": str}
    return {f"{field}:text": str}


def _unequal_levels(a: np.ndarray, b: np.ndarray, level_of: Callable[[str, str], str]) -> list[str]:
    """``level_of`` of each pair, worked out once per distinct pair of values.

    Names and addresses repeat across candidate pairs ("John" / "Jon" in many blocks), so the
    distinct pairs are far fewer than the pairs.
    """
    left, left_values = pd.factorize(a)
    right, right_values = pd.factorize(b)
    pairs, where = np.unique(left.astype(np.int64) * (len(right_values) + 1) + right, return_inverse=True)
    found = [level_of(left_values[k // (len(right_values) + 1)], right_values[k % (len(right_values) + 1)])
             for k in pairs.tolist()]
    return np.array(found + [""], dtype=object)[:-1][where].tolist()


def compare(a: np.ndarray, b: np.ndarray, *, kind: FieldKind, field: str, fuzzy: bool, primary: bool,
            counts: Counts, population: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels and weights (bits) of aligned object arrays of present, normalised values."""
    equal = (a == b).astype(bool)
    levels = np.where(equal, "exact", "else").astype(object)
    if fuzzy and not equal.all():
        levels[~equal] = _unequal_levels(a[~equal], b[~equal], _LEVEL_OF[kind])
    weights = np.empty(len(a), dtype=np.float64)
    if kind == "email":
        table = EMAIL_BITS
    elif kind == "phone":
        table = PHONE_BITS
    elif kind == "name":
        table = NAME_BITS
    else:
        table = PRIMARY_TEXT_BITS if primary else TEXT_BITS
    for level in set(levels.tolist()):
        rows = np.flatnonzero(levels == level)
        weights[rows] = _weights(level, a[rows], b[rows], kind=kind, field=field, primary=primary, table=table,
                                 counts=counts, population=population)
    return levels, weights


def _weights(level: str, a: np.ndarray, b: np.ndarray, *, kind: FieldKind, field: str, primary: bool,
             table: dict[str, float], counts: Counts, population: int) -> np.ndarray:
    """Weights of the pairs of one level, term-frequency adjusted where the level is an agreement."""
    if kind == "email" and level in ("exact", "role"):
        role = np.fromiter(map(is_role_mailbox, a.tolist()), dtype=bool, count=len(a))
        bits = np.where(role, EMAIL_BITS["role"], EMAIL_BITS["exact"])
        return bits - identifier_penalty(counts(f"{field}:address", a))
    if kind == "email" and level == "other_domain":
        mailboxes = np.array([email_mailbox(v) for v in a.tolist()] + [None], dtype=object)[:-1]
        return EMAIL_BITS["other_domain"] - identifier_penalty(counts(f"{field}:mailbox", mailboxes))
    if kind == "phone" and level == "exact":
        return PHONE_BITS["exact"] - identifier_penalty(counts(f"{field}:number", a))
    if kind == "name" and level in ("exact", "translit"):
        letters = [np.array([name_letters(v) for v in side.tolist()] + [None], dtype=object)[:-1] for side in (a, b)]
        seen = np.maximum(counts("names:letters", letters[0]), counts("names:letters", letters[1]))
        bits = frequency_bits(seen, population=population, bounds=NAME_RANGE)
        return bits - (1.0 if level == "translit" else 0.0)
    if kind == "text" and level == "exact":
        if primary:
            return PRIMARY_TEXT_BITS["exact"] - identifier_penalty(counts(f"{field}:text", a))
        return frequency_bits(counts(f"{field}:text", a), population=population, bounds=TEXT_RANGE)
    return np.full(len(a), table.get(level, table["else"]), dtype=np.float64)


def probability(bits: np.ndarray) -> np.ndarray:
    """Posterior match probability (0-1) from the total log2 odds."""
    return 1.0 / (1.0 + np.exp2(-np.clip(bits, -60, 60)))


def bits_for(probability_percent: float) -> float:
    """The log2 odds at which the posterior probability is ``probability_percent`` / 100."""
    p = min(max(probability_percent / 100.0, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))

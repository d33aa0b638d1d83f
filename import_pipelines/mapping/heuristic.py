"""The offline matcher: header words, synonyms, value sniffing and a one-to-one assignment.

For every column it scores three kinds of answer:

- each target field: the best synonym whose words the header contains, less a cost for every
  other word of the header (cheap for fillers like "value" or "number", dear for a word of
  another field); numbered repeats ("E-mail 2") and less preferred qualifiers ("Shipping",
  "Other") score lower; the sample values then confirm the header or take up to 40% off it,
  and alone (a header that says nothing) can carry a column of emails, URLs or countries;
- ``custom`` (keep the column): a column with words in it and values, surer with a hint such
  as "Birthday", "Fax" or "Lead Source";
- ``None`` (do not import): empty columns, row numbers, other records' ids, the tool's
  metadata (modification stamps, IPs, password hashes), statistics it computes, label columns
  describing a sibling column.

Context then adjusts the scores: one address block (default / billing / postal before business,
home, street, shipping, other; the filled one before the empty) keeps the address fields; a bare
"Name" next to only a first-name column is the last name; a label column lends its value
("Mobile") to the column it describes. Finally each target field goes to at most one column, by
the assignment that maximises the total score (:func:`best_assignment`), and every column's
confidence is its score, lowered when another answer it could still take
comes close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from import_pipelines.mapping.model import CUSTOM, Candidate, ColumnSuggestion, Suggestion, TargetField, overall_confidence
from import_pipelines.mapping.normalize import header_words
from import_pipelines.mapping.sniff import ColumnProfile, profile_column
from import_pipelines.mapping.synonyms import (
    ADDRESS_FIELDS, CUSTOM_HINTS, ENTITY_WORDS, FIELD_FILLERS, FILLERS, FOREIGN_RECORD_WORDS, GENERIC_NAME_WORDS,
    GROUP_WORDS, ID_WORDS, LABEL_WORDS, QUALIFIERS, ROW_NUMBER_WORDS, SKIP_HINTS, STAT_WORDS, SYNONYMS,
)

Row = Sequence[Any] | Mapping[str, Any]

# how much an extra header word costs a synonym match
_COST_OWN, _COST_FILLER, _COST_GROUP_OTHER, _COST_LABEL = 0.02, 0.03, 0.15, 0.05
_COST_OTHER_FIELD, _COST_MODIFIER, _COST_HINT, _COST_UNKNOWN = 0.45, 0.25, 0.4, 0.2
_REPEAT_FACTOR = 0.85       # "E-mail 2 Address": a second value of the field
_RANK_STEP = 0.03           # per qualifier rank ("Home Phone" under "Business Phone")
_EMPTY_FACTOR = 0.7         # a header match with no value in the sample: an empty column is not imported

# the custom and skip answers
_CUSTOM_DEFAULT, _CUSTOM_VAGUE, _CUSTOM_HINTED, _CUSTOM_EMPTY = 0.6, 0.45, 0.88, 0.3
_SKIP_DEFAULT, _SKIP_EMPTY, _SKIP_ROW_NUMBER, _SKIP_SEQUENCE = 0.1, 0.75, 0.8, 0.97
_SKIP_FOREIGN_ID, _SKIP_LABEL, _SKIP_STAT, _SKIP_SYSTEM = 0.85, 0.9, 0.85, 0.7

# a column of these values maps on its values alone, this sure at most
_VALUE_ONLY = {"email": 0.75, "url": 0.65, "country": 0.62, "phone": 0.55, "postcode": 0.5, "date": 0.5, "id": 0.45}
_VALUE_ONLY_MIN_SHARE = 0.75

# words of the record's own id besides the entity words ("Unique external ID", "Legacy ID")
_OWN_ID_WORDS = frozenset({"record", "unique", "external", "ext", "source", "legacy", "system", "object"})
_NUMBER_WORDS = frozenset({"number", "no", "nr", "num", "nummer", "numero"})
_NUMBERED_ID = 0.95         # "Customer No" is a record's id less surely than "ID"

# words after which the head of a phrase comes first ("Titre du poste", "Name of company")
_CONNECTORS = frozenset({"of", "de", "du", "des", "del", "von", "der", "di", "da", "do", "van"})


@dataclass
class _Column:
    index: int
    header: str
    words: frozenset[str]
    ordered: tuple[str, ...]
    profile: ColumnProfile
    scores: dict[str, float] = field(default_factory=dict)   # field -> score
    header_scores: dict[str, float] = field(default_factory=dict)
    leftover: dict[str, frozenset[str]] = field(default_factory=dict)  # field -> header words its synonym left
    custom: float = _CUSTOM_DEFAULT
    skip: float = _SKIP_DEFAULT
    describes: bool = False   # a label column of a sibling column ("Phone 1 - Label")


def suggest_heuristic(headers: Sequence[str], samples: Sequence[Row], fields: Sequence[TargetField], *,
                      column_types: Mapping[str, str] | None = None) -> Suggestion:
    """Map ``headers`` onto ``fields`` from the header names and the sample rows, offline.

    ``samples`` are rows as sequences in header order or as mappings by header; ``column_types``
    gives declared types by header (database sources), which settle dates, numbers and booleans.
    """
    fields = tuple(fields)
    vocabulary = _vocabulary(fields)
    types = column_types or {}
    columns: list[_Column] = []
    for index, header in enumerate(map(str, headers)):
        ordered = _words(header, vocabulary)
        profile = profile_column(_column_values(samples, index, header), declared_type=types.get(header))
        columns.append(_Column(index=index, header=header, words=frozenset(ordered), ordered=ordered, profile=profile))
    _lend_labels(columns)
    kinds = {f.name: f.kind for f in fields}
    for column in columns:
        _score_fields(column, vocabulary, kinds)
        _score_custom_and_skip(column, vocabulary)
    _pick_address_block(columns, vocabulary)
    _name_halves(columns, fields)
    return _assign(columns, [f.name for f in fields])


# --- words --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Vocabulary:
    synonyms: dict[str, tuple[frozenset[str], ...]]
    own: dict[str, frozenset[str]]            # field -> every word of its synonyms
    owners: dict[str, frozenset[str]]         # word -> fields whose synonyms use it
    custom_hints: tuple[frozenset[str], ...]
    skip_hints: tuple[tuple[frozenset[str], float], ...]
    stat_hints: tuple[frozenset[str], ...]
    hint_words: frozenset[str]
    known: frozenset[str]


@lru_cache(maxsize=32)
def _vocabulary(fields: tuple[TargetField, ...]) -> _Vocabulary:
    synonyms: dict[str, tuple[frozenset[str], ...]] = {}
    for target in fields:
        phrases = [*SYNONYMS.get(target.name, ()), *target.synonyms, target.name.replace("_", " ")]
        sets = {frozenset(header_words(p)) for p in phrases} - {frozenset()}
        if target.name == "external_id":
            # "<entity> id" / "<entity> number": the record's own id
            sets |= {frozenset({entity, word}) for entity in ENTITY_WORDS | _OWN_ID_WORDS
                     for word in ID_WORDS | {"number", "no", "nr", "code"}}
            sets |= {frozenset({word}) for word in ID_WORDS}
        synonyms[target.name] = tuple(sorted(sets, key=lambda s: (-len(s), sorted(s))))
    own = {name: frozenset().union(*sets) for name, sets in synonyms.items()}
    owners: dict[str, set[str]] = {}
    for name, words in own.items():
        for word in words:
            owners.setdefault(word, set()).add(name)
    custom_hints = tuple({frozenset(header_words(p)) for p in CUSTOM_HINTS} - {frozenset()})
    skip_hints = tuple((frozenset(header_words(p)), score) for p, score in SKIP_HINTS.items() if header_words(p))
    stat_hints = tuple({frozenset(header_words(p)) for p in STAT_WORDS} - {frozenset()})
    hint_words = frozenset().union(*custom_hints, *(s for s, _ in skip_hints), *stat_hints)
    known = (frozenset(owners) | hint_words | FILLERS | ENTITY_WORDS | GROUP_WORDS | frozenset(QUALIFIERS)
             | ID_WORDS | LABEL_WORDS | ROW_NUMBER_WORDS | frozenset().union(*FIELD_FILLERS.values()))
    return _Vocabulary(synonyms=synonyms, own=own, owners={w: frozenset(f) for w, f in owners.items()},
                       custom_hints=custom_hints, skip_hints=skip_hints, stat_hints=stat_hints,
                       hint_words=hint_words, known=known)


def _words(header: str, vocabulary: _Vocabulary) -> tuple[str, ...]:
    """The header's words, plurals made singular and compounds split where the parts are known words."""
    result: list[str] = []
    for word in header_words(header):
        result.extend(_known_form(word, vocabulary.known))
    return tuple(result)


@lru_cache(maxsize=65536)
def _known_form(word: str, known: frozenset[str]) -> tuple[str, ...]:
    """``word`` as the vocabulary knows it: singular, split into known parts, or a misspelling corrected."""
    if word in known or word.isdigit():
        return (word,)
    for singular in (word[:-3] + "y" if word.endswith("ies") else None, word[:-1] if word.endswith("s") else None):
        if singular and singular in known:
            return (singular,)
    if len(word) >= 7:  # German and Dutch compounds: "telefonnummer", "kundennummer", "geburtsdatum"
        for cut in range(3, len(word) - 2):
            head, tail = word[:cut], word[cut:]
            if head in known and tail in known:
                return head, tail
            if head in known and tail.startswith("s") and tail[1:] in known:
                return head, tail[1:]
    if len(word) >= 5:  # "Adress", "Emial", "Compagny": one edit (or a swap of two letters) off a known word
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        limit = 1 if len(word) < 8 else 2
        match = process.extractOne(word, known, scorer=OSA.distance, score_cutoff=limit)
        if match is not None and match[0][0] == word[0]:
            return (match[0],)
    return (word,)


def _column_values(samples: Sequence[Row], index: int, header: str) -> list[Any]:
    values: list[Any] = []
    for row in samples:
        if isinstance(row, Mapping):
            values.append(row.get(header))
        else:
            values.append(row[index] if index < len(row) else None)
    return values


# --- scores -------------------------------------------------------------------------------------

def _score_fields(column: _Column, vocabulary: _Vocabulary, kinds: Mapping[str, str]) -> None:
    profile = column.profile
    salutations = profile.share("salutation") >= 0.5
    head = _head(column.ordered, vocabulary)
    # words a synonym binds to the head ("last" in "billing_last_name"): never a mere modifier of it
    bound = frozenset().union(*(s for sets in vocabulary.synonyms.values() for s in sets
                                if head in s and s <= column.words))
    for name, sets in vocabulary.synonyms.items():
        header, leftover = _header_score(column.words, name, sets, vocabulary, head=head, bound=bound)
        column.header_scores[name] = header
        column.leftover[name] = leftover
        fit = _value_fit(kinds[name], profile)
        if header > 0:
            score = header * (_EMPTY_FACTOR if profile.empty else 1.0) if fit is None else header * (0.6 + 0.4 * fit)
        else:
            score = 0.0
        only = _VALUE_ONLY.get(kinds[name])
        if only and fit is not None and fit >= _VALUE_ONLY_MIN_SHARE:
            score = max(score, only * fit)
        if salutations and kinds[name] in ("text", "name"):
            score *= 0.4  # "Title" full of "Mr." and "Dr.": a courtesy title
        column.scores[name] = score


def _header_score(words: frozenset[str], name: str, sets: tuple[frozenset[str], ...], vocabulary: _Vocabulary, *,
                  head: str | None, bound: frozenset[str]) -> tuple[float, frozenset[str]]:
    """The best synonym match of ``words`` for field ``name``, and the header words it left over.

    A word of another field costs less when the synonym holds the header's head word and that
    word only modifies it: "Organization Title" is a title, "Organization Name" a company.
    """
    best, best_left = 0.0, words
    for synonym in sets:
        if not synonym <= words:
            continue
        left = words - synonym
        modifies = head in synonym
        costs = (_cost(word, name, vocabulary) for word in left)
        score = 1.0 - sum(_COST_MODIFIER if cost == _COST_OTHER_FIELD and modifies and word not in bound else cost
                          for word, cost in zip(left, costs))
        if name == "external_id" and synonym & _NUMBER_WORDS:
            score *= _NUMBERED_ID
        numbers = [int(w) for w in left if w.isdigit()]
        if any(n >= 2 for n in numbers):
            score *= 0.5 if name in ("address_line1", "address_line2") and any(n >= 3 for n in numbers) else _REPEAT_FACTOR
        ranks = [QUALIFIERS[w] for w in left if w in QUALIFIERS]
        if ranks and name not in ADDRESS_FIELDS:
            score *= 1.0 - _RANK_STEP * min(ranks)
        if score > best:
            best, best_left = score, left
    return max(best, 0.0), best_left


def _head(ordered: tuple[str, ...], vocabulary: _Vocabulary) -> str | None:
    """The word a header is about: the last field word, or the first one when a connector follows it."""
    content = [w for w in ordered if w in vocabulary.owners and w not in FILLERS]
    if not content:
        return None
    if any(w in _CONNECTORS for w in ordered[ordered.index(content[0]):]):
        return content[0]
    return content[-1]


def _cost(word: str, name: str, vocabulary: _Vocabulary) -> float:
    if word.isdigit() or word in QUALIFIERS:
        return 0.0
    if word in vocabulary.own[name] or word in FIELD_FILLERS.get(name, ()):
        return _COST_OWN
    if word in FILLERS or word in ENTITY_WORDS:
        return _COST_FILLER
    if word in GROUP_WORDS:
        return _COST_FILLER if name in ADDRESS_FIELDS else _COST_GROUP_OTHER
    if word in LABEL_WORDS:
        return _COST_LABEL
    if word in vocabulary.owners:
        return _COST_OTHER_FIELD
    if word in vocabulary.hint_words:
        return _COST_HINT
    return _COST_UNKNOWN


def _value_fit(kind: str, profile: ColumnProfile) -> float | None:
    """How well the sample values fit a field of ``kind``: 0-1, None without values."""
    if profile.filled == 0:
        return None
    s = profile.share
    clear = max(s("email"), s("url"), s("ip"), s("date"))  # values that are clearly not free text
    if kind in ("email", "url", "phone", "date", "postcode", "country", "boolean", "number"):
        return s(kind)
    if kind == "id":
        return s("id") * (1.0 if profile.distinct >= 0.9 else 0.5)
    if kind == "state":
        return min(1.0, max(s("state"), 0.7 * (1.0 - clear - s("phone"))))
    if kind == "name":
        return s("name")
    if kind == "city":
        return max(s("name"), s("state"))
    if kind == "address":
        return max(s("street"), 0.6 * max(0.0, 1.0 - clear - s("phone") - s("number")))
    return max(0.0, 1.0 - clear - s("phone"))


def _score_custom_and_skip(column: _Column, vocabulary: _Vocabulary) -> None:
    words, profile = column.words, column.profile
    meaningful = words - FILLERS - ENTITY_WORDS
    custom_hint = max((len(h) for h in vocabulary.custom_hints if h <= words), default=0)
    skip_hint, skip_hint_len = 0.0, 0
    for hint, score in vocabulary.skip_hints:
        if hint <= words and (len(hint), score) > (skip_hint_len, skip_hint):
            skip_hint, skip_hint_len = score, len(hint)

    if not words or all(w.isdigit() for w in words) or _vague(column.ordered, vocabulary):
        column.custom = _CUSTOM_VAGUE
    if custom_hint > skip_hint_len:
        column.custom = _CUSTOM_HINTED
    elif skip_hint:
        column.skip = max(column.skip, skip_hint)
    if custom_hint and skip_hint_len == custom_hint:
        column.custom = _CUSTOM_HINTED
        column.skip = max(column.skip, skip_hint)

    numeric = profile.filled == 0 or profile.share("number") >= 0.8
    if numeric and any(h <= words for h in vocabulary.stat_hints):
        column.skip = max(column.skip, _SKIP_STAT)
    if words - FILLERS and words - FILLERS <= ROW_NUMBER_WORDS:
        column.skip = max(column.skip, _SKIP_SEQUENCE if profile.sequence or profile.empty else _SKIP_ROW_NUMBER)
    elif profile.sequence and max(column.header_scores.values(), default=0.0) < 0.5:
        column.skip = max(column.skip, _SKIP_ROW_NUMBER)
    others = meaningful - ID_WORDS - _OWN_ID_WORDS - frozenset(QUALIFIERS)
    foreign = (words & ID_WORDS and others) or (words & _NUMBER_WORDS and words & FOREIGN_RECORD_WORDS)
    if foreign and (profile.empty or profile.share("id") >= 0.6):
        # "Owner ID", "AccountId", "Order #" with id-like values: another record's id ("Skype ID" has names)
        column.skip = max(column.skip, _SKIP_FOREIGN_ID)
        column.custom = min(column.custom, _CUSTOM_DEFAULT)
        for name in column.scores:
            column.scores[name] *= 0.5
    if column.header.startswith("_"):
        column.skip = max(column.skip, _SKIP_SYSTEM)
    if column.describes:
        column.skip = max(column.skip, _SKIP_LABEL)
    if profile.empty:
        column.skip = max(column.skip, _SKIP_EMPTY)
        column.custom = min(column.custom, _CUSTOM_EMPTY)


def _vague(ordered: tuple[str, ...], vocabulary: _Vocabulary) -> bool:
    """A header that says nothing: "Column 7", "Feld1", an unknown abbreviation of three letters or fewer."""
    content = [w for w in ordered if not w.isdigit()]
    if not content:
        return True
    if set(content) <= {"column", "col", "field", "feld", "spalte", "colonne", "columna", "unnamed", "untitled"}:
        return True
    return len(content) == 1 and len(content[0]) <= 3 and content[0] not in vocabulary.known


# --- context ------------------------------------------------------------------------------------

def _lend_labels(columns: list[_Column]) -> None:
    """A "<group> Label/Type" column describes its sibling "<group> Value": lend its words, then skip it.

    Google Contacts writes "Phone 1 - Label" = "Mobile" beside "Phone 1 - Value"; the value column
    then reads as "Phone 1 Value Mobile" and the mobile field finds it.
    """
    for column in columns:
        if len(column.ordered) < 2 or column.ordered[-1] not in LABEL_WORDS:
            continue
        prefix = column.ordered[:-1]
        if not (set(prefix) - ENTITY_WORDS):
            continue
        siblings = [c for c in columns if c is not column and c.ordered[:len(prefix)] == prefix
                    and len(c.ordered) > len(prefix) and (c.ordered[len(prefix)] == "value"
                                                          or any(w.isdigit() for w in prefix))]
        if not siblings:
            continue
        column.describes = True
        for sibling in siblings:
            if sibling.ordered[len(prefix)] == "value" and column.profile.words:
                sibling.words = sibling.words | frozenset(column.profile.words)


def _pick_address_block(columns: list[_Column], vocabulary: _Vocabulary) -> None:
    """Keep the address fields for one block; the other blocks' columns become custom (or skipped when empty).

    A block is the qualifier of its columns ("Billing", "Home", Xero's "PO" and "SA") and the
    number of a repeated group ("Address 2 - City"); qualifier words that are part of an address
    field's own name ("Postal Code") do not make a block. Among the blocks holding at least half
    as many values as the fullest, the best ranked qualifier wins; unqualified columns join the
    winner for the fields it lacks. A column whose header every other column of its block extends
    ("Postal address" beside "Postal address - City/town") is the whole address in one cell.
    """
    address_words = frozenset().union(*(vocabulary.own[n] for n in ADDRESS_FIELDS if n in vocabulary.own))
    blocks: dict[tuple[str, int], list[_Column]] = {}
    best_field: dict[int, str] = {}
    for column in columns:
        best_address = max(((column.scores.get(n, 0.0), n) for n in ADDRESS_FIELDS if n in column.scores), default=(0.0, ""))
        best_other = max((s for n, s in column.scores.items() if n not in ADDRESS_FIELDS), default=0.0)
        if best_address[0] < 0.5 or best_address[0] < best_other:
            continue
        best_field[column.index] = best_address[1]
        qualifiers = sorted((QUALIFIERS[w], w) for w in column.words - address_words if w in QUALIFIERS)
        left = column.leftover.get(best_address[1], frozenset())
        numbers = [int(w) for w in left if w.isdigit() and int(w) >= 2]
        key = (qualifiers[0][1] if qualifiers else "", min(numbers) if numbers else 1)
        blocks.setdefault(key, []).append(column)
    for block in blocks.values():
        for column in block:
            if sum(1 for other in block if other is not column and column.words < other.words) >= 2:
                for name in ADDRESS_FIELDS & column.scores.keys():
                    column.scores[name] *= 0.6
    if len(blocks) < 2:
        return

    def fill(block: list[_Column]) -> float:
        return sum(c.profile.fill_rate if c.profile.rows else 1.0 for c in block)

    best_fill = max(fill(b) for b in blocks.values())
    candidates = [key for key, block in blocks.items() if fill(block) >= 0.5 * best_fill and fill(block) > 0]
    winner = min(candidates, key=lambda k: (QUALIFIERS.get(k[0], 0) + (0.5 if k[1] >= 2 else 0), -fill(blocks[k])))
    covered = {best_field[c.index] for c in blocks[winner]}
    for key, block in blocks.items():
        if key == winner:
            continue
        for column in block:
            if key == ("", 1) and best_field[column.index] not in covered:
                continue  # an unqualified "Country" beside a "Billing ..." block without one
            for name in ADDRESS_FIELDS & column.scores.keys():
                column.scores[name] *= 0.55


def _name_halves(columns: list[_Column], fields: Sequence[TargetField]) -> None:
    """A bare "Name" ("Nom", "Nombre") beside only a first-name column is the last name, and the other way round."""
    names = {f.name for f in fields}
    if not {"full_name", "first_name", "last_name"} <= names:
        return
    for column in columns:
        if not (column.words - FILLERS - ENTITY_WORDS) or not (column.words - FILLERS - ENTITY_WORDS) <= GENERIC_NAME_WORDS:
            continue
        others = [c for c in columns if c is not column]
        has_first = any(c.scores.get("first_name", 0) >= 0.85 for c in others)
        has_last = any(c.scores.get("last_name", 0) >= 0.85 for c in others)
        full = column.scores.get("full_name", 0.0)
        if has_first and not has_last:
            column.scores["last_name"] = max(column.scores.get("last_name", 0.0), 0.95 * full)
            column.scores["full_name"] = 0.7 * full
        elif has_last and not has_first:
            column.scores["first_name"] = max(column.scores.get("first_name", 0.0), 0.95 * full)
            column.scores["full_name"] = 0.7 * full


# --- assignment ---------------------------------------------------------------------------------

def _assign(columns: list[_Column], field_names: list[str]) -> Suggestion:
    """Give each field to at most one column, maximising the total score; score every column's confidence."""
    n = len(columns)
    if n == 0:
        return Suggestion(columns=[], overall_confidence=0.0, method="heuristic")
    fallback = [max(c.custom, c.skip) for c in columns]
    # what giving a field to a column gains over that column's own fallback; equal gains go to the
    # earlier column, as exports put their main columns first
    gains = [[columns[i].scores.get(name, 0.0) - fallback[i] - 1e-6 * i for i in range(n)] for name in field_names]
    chosen: dict[int, str | None] = {}
    owner_score: dict[str, float] = {}
    for name, i in zip(field_names, best_assignment(gains)):
        if i is not None:
            chosen[i] = name
            owner_score[name] = columns[i].scores[name]
    for i, column in enumerate(columns):
        chosen.setdefault(i, CUSTOM if column.custom >= column.skip else None)

    suggestions: list[ColumnSuggestion] = []
    for i, column in enumerate(columns):
        options: dict[str | None, float] = {name: column.scores.get(name, 0.0) for name in field_names}
        options[CUSTOM] = column.custom
        options[None] = column.skip
        pick = chosen[i]
        score = options[pick]
        # an answer this column could still take: a free field, or one held by a column that scores it lower
        reachable = [s for option, s in options.items() if option != pick and (
            option in (CUSTOM, None) or option not in owner_score or owner_score[option] <= s)]
        margin = score - max(reachable, default=0.0)
        confidence = max(0.0, min(1.0, score * (0.6 + 0.4 * max(0.0, min(1.0, margin / 0.25)))))
        candidates = sorted(((s, option) for option, s in options.items() if option != pick and s >= 0.2),
                            key=lambda item: (-item[0], str(item[1])))[:3]
        suggestions.append(ColumnSuggestion(
            header=column.header, field=pick, confidence=round(confidence, 3),
            candidates=[Candidate(field=option, confidence=round(min(1.0, s), 3)) for s, option in candidates]))
    return Suggestion(columns=suggestions, overall_confidence=overall_confidence(suggestions), method="heuristic")


def best_assignment(gains: Sequence[Sequence[float]]) -> list[int | None]:
    """For each row (a field), a distinct column or None, maximising the total gain; only positive gains are taken.

    The Hungarian method by shortest augmenting paths (Kuhn-Munkres with potentials), on the
    rows against the columns plus one "unassigned" column per row at gain 0. Written here rather
    than calling :func:`scipy.optimize.linear_sum_assignment` (which the tests use to check it)
    because importing ``scipy.optimize`` takes 0.5-0.9 s in a fresh process on this machine,
    ten times the whole matching of 200 columns; with a row per field (about twenty) it costs
    O(fields^2 x columns), a few milliseconds.
    """
    rows = len(gains)
    if rows == 0:
        return []
    cols = len(gains[0])
    width = cols + rows  # the real columns, then one "unassigned" slot per row
    cost = [[-g for g in row] + [0.0] * rows for row in gains]
    inf = float("inf")
    u = [0.0] * (rows + 1)
    v = [0.0] * (width + 1)
    owner = [0] * (width + 1)   # owner[j]: the row (1-based) holding column j; column 0 is the root
    way = [0] * (width + 1)
    for row in range(1, rows + 1):
        owner[0] = row
        j0 = 0
        least = [inf] * (width + 1)
        used = [False] * (width + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = owner[j0], inf, 0
            line, ui = cost[i0 - 1], u[i0]
            for j in range(1, width + 1):
                if not used[j]:
                    current = line[j - 1] - ui - v[j]
                    if current < least[j]:
                        least[j], way[j] = current, j0
                    if least[j] < delta:
                        delta, j1 = least[j], j
            for j in range(width + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    least[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    result: list[int | None] = [None] * rows
    for j in range(1, cols + 1):
        if owner[j] and gains[owner[j] - 1][j - 1] > 0:
            result[owner[j] - 1] = j - 1
    return result

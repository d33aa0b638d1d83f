"""Turn raw field values into the strings the dedupe engine compares and blocks on.

The normalising functions take a whole column and return a numpy object array of ``str`` with
``None`` for a missing value, so callers never test for NaN, empty strings and whitespace-only
strings separately: all three are *missing*. The per-value work is one comprehension over
``str`` methods, several times faster than chained pandas ``.str`` calls on object columns.
:class:`PreparedFrame` applies them lazily to the columns a rule needs.

Per field kind (see :data:`FieldKind`):

| kind | comparison value |
|---|---|
| ``text`` | NFKC, whitespace collapsed and trimmed, casefolded |
| ``name`` | as ``text`` (names get extra blocking keys and first/last swap tolerance elsewhere) |
| ``email`` | lower-cased, NFKC, all whitespace removed, lower-cased |
| ``phone`` | digits only, with a country calling code (``"(555) 010-2000"`` -> ``"15550102000"``) |

Under the ``exact`` strategy values are compared as they arrive (only converted to text), which
is what makes ``"John.Doe@Example.com "`` and ``"john.doe@example.com"`` different there.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from import_pipelines.dedupe.matching import DedupeRule

FieldKind = Literal["text", "email", "phone", "name"]

_EMAIL_TOKENS = {"email", "mail", "e_mail", "emailaddress"}
_PHONE_TOKENS = {"phone", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "msisdn", "phonenumber"}
_NAME_TOKENS = {"name", "firstname", "lastname", "surname", "fullname", "forename", "givenname", "familyname",
                "middlename"}
# "company_name" or "username" name a thing, not a person: they are compared as plain text.
_NOT_PERSON_TOKENS = {"company", "organization", "organisation", "org", "business", "user", "file", "domain",
                      "host", "account", "product", "brand", "team", "group"}

# An extension at the end of a phone number is not part of the number people dial to reach the line.
_PHONE_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$")
_NON_DIGITS = bytes(b for b in range(256) if not 48 <= b <= 57)
# NANP numbers are 10 digits; most other national numbers are shorter. A longer number that
# already starts with the country code is therefore taken to carry it.
_LONGEST_NATIONAL_NUMBER = 10
_CHUNK = 8192


def infer_kind(field: str) -> FieldKind:
    """Guess how to normalise ``field`` from its name (``work_email`` -> ``email``).

    Used when a rule's ``field_kinds`` does not name the field; anything unrecognised is ``text``.
    """
    lowered = field.lower()
    tokens = {token for token in re.split(r"[^a-z0-9]+", lowered) if token}
    if tokens & _EMAIL_TOKENS or "email" in lowered:
        return "email"
    if tokens & _PHONE_TOKENS or "phone" in lowered:
        return "phone"
    if tokens & _NAME_TOKENS and not tokens & _NOT_PERSON_TOKENS:
        return "name"
    return "text"


def text_values(values: pd.Series) -> list[str | None]:
    """Values as a list of ``str`` (``None`` for missing).

    Integral floats lose their ``.0`` because spreadsheets and CSV readers turn phone numbers and
    ids into floats, and ``5550102000.0`` must still read as ``5550102000``.
    """
    array = values.to_numpy(dtype=object, na_value=None)
    # Text columns (the usual case) need no per-value conversion; the dtype check is one C scan.
    if isinstance(values.dtype, pd.StringDtype) or pd.api.types.infer_dtype(array, skipna=True) in ("string", "empty"):
        return array.tolist()
    return [value if type(value) is str else _to_text(value) for value in array.tolist()]


def _to_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    return str(value)


def _nfkc(value: str) -> str:
    # ASCII text is already in NFKC; skipping it keeps the common case cheap.
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def _array(values: list[str | None]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def exact_values(values: pd.Series) -> np.ndarray:
    """Values as they arrive, converted to text; empty or whitespace-only values are missing."""
    return _array([v if v and not v.isspace() else None for v in text_values(values)])


def normalize_text(values: pd.Series) -> np.ndarray:
    """NFKC, collapse inner whitespace, trim, casefold, NFKC again.

    Casefold rather than lower so that ``STRASSE`` and ``straße`` agree. Case folding can leave
    text that is not normalised (``ῒ`` folds to three code points, the folded upper case to two),
    so the folded text is normalised once more: the same text in either case compares equal.
    """
    return _array([_nfkc(" ".join(_nfkc(v).split()).casefold()) or None if v else None for v in text_values(values)])


def normalize_email(values: pd.Series) -> np.ndarray:
    """Lower-case, NFKC, drop every whitespace character (none is valid in an address), lower-case,
    NFKC again (dropping the space of a decomposed accent or lower-casing can leave text that is not
    normalised). Lower-casing first keeps the case of the input from choosing the form NFKC gives:
    the lunate sigma ``ϲ`` becomes ``ς``, its capital ``Ϲ`` becomes ``Σ`` and then ``σ``."""
    return _array([_nfkc("".join(_nfkc(v.lower()).split()).lower()) or None if v else None
                   for v in text_values(values)])


def normalize_phone(values: pd.Series, *, country_code: str = "1") -> np.ndarray:
    """Reduce phone numbers to digits including the country calling code.

    ``+`` or ``00`` marks a number that already carries its country code. A number without it
    gets ``country_code`` prepended after dropping a national trunk ``0``, unless it is longer
    than a national number and already starts with the code (``1-555-010-2000``). With
    ``country_code="1"``: ``"(555) 010-2000"``, ``"+1 555 010 2000"`` and ``"1.555.010.2000"``
    all become ``"15550102000"``. Extensions (``x12``, ``ext. 12``) are dropped.
    """
    return _array([_phone(v, country_code) if v else None for v in text_values(values)])


def _phone(value: str, country_code: str) -> str | None:
    value = _nfkc(value)
    # Every extension marker ("x", "ext", "extension", "#") contains "x" or "#": skip the regex otherwise.
    if "x" in value or "X" in value or "#" in value:
        value = _PHONE_EXTENSION.sub("", value)
    value = value.strip()
    digits = value.encode("ascii", "ignore").translate(None, _NON_DIGITS).decode()
    if not digits:
        return None
    if value.startswith("+"):
        return digits
    if value.startswith("00"):
        return digits[2:] or None
    if len(digits) > _LONGEST_NATIONAL_NUMBER and digits.startswith(country_code):
        return digits
    national = digits.lstrip("0")
    return country_code + national if national else None


def normalize_values(values: pd.Series, *, kind: FieldKind, phone_country: str = "1") -> np.ndarray:
    """Normalise one column according to its kind (see the module table)."""
    if kind == "email":
        return normalize_email(values)
    if kind == "phone":
        return normalize_phone(values, country_code=phone_country)
    return normalize_text(values)


def fold_accents(value: str) -> str:
    """Strip diacritics (``josé`` -> ``jose``).

    Used only for blocking keys: an exporting system that dropped accents must still land the
    record in the same block, while the similarity score keeps seeing the difference.
    """
    if value.isascii():
        return value
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))


class PreparedFrame:
    """One side of a comparison: record ids and lazily normalised field values.

    ``values`` are what the rule's strategy compares (raw text under ``exact``, normalised
    otherwise); ``normalized`` values are what ``match_any`` and the non-exact blocking keys
    use. A field is normalised on first use, and :meth:`take` normalises only the rows asked
    for: secondary fields are needed only for the rows that appear in candidate pairs, which
    under ``exact`` are few.

    Raises ``ValueError`` naming the side and the columns when a rule field is not a column of
    ``df`` or ids are missing or repeat. ``id_column`` None takes ids from the index.
    """

    def __init__(self, df: pd.DataFrame, rule: DedupeRule, *, id_column: str | None, side: str = "incoming") -> None:
        missing = [name for name in rule.columns if name not in df.columns]
        if missing:
            raise ValueError(f"dedupe: the {side} frame has no column(s) {missing} required by the rule "
                             f"(columns: {list(df.columns)})")
        label = repr(id_column) if id_column is not None else "the index"
        # Ids keep their own dtype (int64 ids stay a fast int64 array); they become Python
        # objects only when results are built.
        if id_column is None:
            ids = df.index.to_numpy()
        elif id_column not in df.columns:
            raise ValueError(f"dedupe: the {side} frame has no id column {id_column!r}")
        else:
            ids = df[id_column].to_numpy()
        if pd.isna(ids).any():
            raise ValueError(f"dedupe: the {side} frame has records without an id in {label}")
        if not pd.Index(ids).is_unique:
            raise ValueError(f"dedupe: ids in {label} of the {side} frame are not unique")
        self.ids = ids
        self.rule = rule
        self._columns = {name: df[name] for name in rule.columns}
        # every value of a multi-valued field (all of a customer's addresses), when the frame has them
        self._lists = {name: df[column] for name, column in rule.all_values.items() if column in df.columns}
        self._multi: dict[str, np.ndarray] = {}
        self._full: dict[tuple[str, bool], np.ndarray] = {}
        self._hashes: dict[tuple[str, bool], np.ndarray] = {}
        self._present: dict[tuple[str, bool], np.ndarray] = {}
        self._partial: dict[tuple[str, bool], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def size(self) -> int:
        """Number of records."""
        return len(self.ids)

    def _convert(self, name: str, column: pd.Series, *, normalized: bool) -> np.ndarray:
        if normalized or self.rule.strategy != "exact":
            return normalize_values(column, kind=self.rule.kind_of(name), phone_country=self.rule.phone_country)
        return exact_values(column)

    def _key(self, name: str, normalized: bool) -> tuple[str, bool]:
        # Outside the exact strategy the compared values are the normalised ones: one cache.
        return name, normalized or self.rule.strategy != "exact"

    def values(self, name: str, *, normalized: bool = False) -> np.ndarray:
        """All values of ``name`` (object array, None when missing)."""
        key = self._key(name, normalized)
        if key not in self._full:
            self._fill(name, key)
        return self._full[key]

    def hashes(self, name: str, *, normalized: bool = False) -> np.ndarray:
        """Python ``hash`` of every value of ``name`` (0 where missing), for blocking on the value."""
        key = self._key(name, normalized)
        if key not in self._hashes:
            self._fill(name, key)
        return self._hashes[key]

    def present(self, name: str, *, normalized: bool = False) -> np.ndarray:
        """Positions where ``name`` has a value (ascending)."""
        key = self._key(name, normalized)
        if key not in self._present:
            self._fill(name, key)
        return self._present[key]

    def _fill(self, name: str, key: tuple[str, bool]) -> None:
        column = self._columns[name]
        parts: list[np.ndarray] = []
        positions: list[np.ndarray] = []
        hashes = np.zeros(len(column), dtype=np.int64)
        # Chunk by chunk, so that a chunk's strings are still in the CPU cache when they are
        # hashed: touching scattered string objects twice costs more than the work itself.
        for start in range(0, len(column), _CHUNK):
            part = self._convert(name, column.iloc[start:start + _CHUNK], normalized=key[1])
            present = np.flatnonzero(np.not_equal(part, None))
            hashes[start + present] = np.fromiter(map(hash, part[present].tolist()), dtype=np.int64,
                                                  count=len(present))
            parts.append(part)
            positions.append(start + present)
        self._full[key] = np.concatenate(parts) if parts else np.empty(0, dtype=object)
        self._present[key] = np.concatenate(positions).astype(np.int64) if positions else np.empty(0, np.int64)
        self._hashes[key] = hashes
        self._partial.pop(key, None)

    def take(self, name: str, positions: np.ndarray, *, normalized: bool = False) -> np.ndarray:
        """Values of ``name`` at ``positions``, normalising only rows not seen before."""
        key = self._key(name, normalized)
        if key in self._full:
            return self._full[key][positions]
        cache, done = self._partial.get(key) or (np.full(self.size, None, dtype=object),
                                                 np.zeros(self.size, dtype=bool))
        wanted = np.zeros(self.size, dtype=bool)
        wanted[positions] = True
        todo = np.flatnonzero(wanted & ~done)
        if len(todo):
            cache[todo] = self._convert(name, self._columns[name].iloc[todo], normalized=key[1])
            done[todo] = True
        self._partial[key] = (cache, done)
        return cache[positions]


    def multi(self, name: str) -> np.ndarray:
        """Every value of ``name`` per record: a tuple of distinct compared values, or None.

        The field's own value comes first, then those of its list column (``rule.all_values``)
        where the frame has one; a record without any value has None.
        """
        if name not in self._multi:
            single = self.values(name)
            merged = np.empty(self.size, dtype=object)
            lists = self._lists.get(name)
            if lists is None:
                merged[:] = [(v,) if v is not None else None for v in single.tolist()]
            else:
                positions, flat = [], []
                for k, items in enumerate(lists.tolist()):
                    if isinstance(items, str):  # a list sent as text: one value a line
                        items = items.splitlines()
                    if items is None or (not isinstance(items, (list, tuple, np.ndarray))):
                        continue
                    for item in items:
                        positions.append(k)
                        flat.append(item)
                normalised = self._convert(name, pd.Series(flat, dtype=object), normalized=False) if flat else []
                extra: list[list[str]] = [[] for _ in range(self.size)]
                for k, value in zip(positions, list(normalised)):
                    if value is not None:
                        extra[k].append(value)
                merged[:] = [tuple(dict.fromkeys(([v] if v is not None else []) + more)) or None
                             for v, more in zip(single.tolist(), extra)]
            self._multi[name] = merged
        return self._multi[name]


def prepare_frame(df: pd.DataFrame, rule: DedupeRule, *, id_column: str | None,
                  side: str = "incoming") -> PreparedFrame:
    """Check ``df`` against ``rule`` and wrap it for lazy normalisation (see :class:`PreparedFrame`)."""
    return PreparedFrame(df, rule, id_column=id_column, side=side)

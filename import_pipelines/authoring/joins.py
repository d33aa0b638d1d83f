"""Suggest how a source's tables join, each suggestion with a confidence and its evidence.

Declared foreign keys are certain (confidence 1.0). Many application schemas declare none
(FreeScout's migrations, osTicket's, most Rails and Laravel apps), so column names are read as a
developer reads them and every reading is then checked against the data:

- **naming patterns**: ``customer_id`` -> ``customers.id`` (plural or singular, a shared table
  prefix such as ``ost_`` stripped), a role before the name (``created_by_user_id`` -> ``users``),
  the owning table before it (``ost_ticket.status_id`` -> ``ost_ticket_status``), a common
  abbreviation (``dept_id`` -> ``department``), a table that ends in the name (``topic_id`` ->
  ``help_topic``), a parent (``parent_id``, ``pid``) -> the table itself. The referenced column
  is the table's single-column primary key, so each match finds at most one row.
- **the data**: a bounded sample of the column's values (:data:`SAMPLE_ROWS`, pages sampled on
  large tables) is looked up in the referenced table by its key index: the share of non-null
  values that find a row (``0`` and ``''``, which many schemas use for "none", are counted
  apart when no row has that key), how many distinct rows they hit, the cardinality
  (one-to-one when the column is unique), and whether the types compare without a cast.

All candidates are probed with one statement (a ``UNION ALL`` of bounded look-ups). Only the best
reading of each column is suggested: a column references one table. Confidence multiplies the
strength of the naming pattern by what the data says (see :func:`confidence`), so a name
the data contradicts ends far below 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from import_pipelines.authoring.names import shared_prefix, singular, words
from import_pipelines.db.introspect import SchemaInfo
from import_pipelines.db.sql import ident

SAMPLE_ROWS = 2000
"""Values of a column looked up per candidate join (at most twice as many): enough to see a
pattern, bounded in cost."""
PROBES_PER_STATEMENT = 100

# how much a naming pattern alone says (before the data is consulted)
PATTERN_STRENGTH = {"name": 0.95, "abbreviation": 0.85, "role": 0.85, "owner": 0.85, "parent": 0.75,
                    "suffix": 0.65}
ABBREVIATIONS = {"dept": "department", "org": "organization", "orgs": "organization", "msg": "message",
                 "addr": "address", "cat": "category", "conv": "conversation", "usr": "user", "grp": "group",
                 "acct": "account", "cust": "customer", "emp": "employee", "prod": "product", "proj": "project",
                 "inv": "invoice", "loc": "location", "attr": "attribute", "tpl": "template", "tmpl": "template"}
_PARENT_WORDS = {"parent", "pid"}

_INTEGER = {"smallint", "integer", "bigint"}
_NUMERIC = {"numeric", "decimal"}
_TEXT = {"text", "character varying", "character", "varchar", "citext", "name", "bpchar"}


@dataclass(frozen=True)
class JoinSuggestion:
    """``table.columns`` -> ``ref_table.ref_columns``, how sure, and why."""

    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def from_ref(self) -> str:
        """``table.column`` (``table.(a, b)`` for a composite key)."""
        return _ref(self.table, self.columns)

    @property
    def to_ref(self) -> str:
        """``ref_table.ref_column``."""
        return _ref(self.ref_table, self.ref_columns)

    def to_json(self) -> dict[str, Any]:
        """``{"from": ..., "to": ..., "confidence": ..., "evidence": {...}}``."""
        return {"from": self.from_ref, "to": self.to_ref, "confidence": round(self.confidence, 3),
                "evidence": self.evidence}

    def summary(self) -> str:
        """The evidence in a few words, for a terminal."""
        e = self.evidence
        if "declared" in e:
            return f"declared foreign key {e['declared']}"
        parts = [f"{e['pattern']} pattern"]
        if e.get("checked"):
            parts.append(f"{e['matched']:,}/{e['checked']:,} values found ({e['match_share']:.0%})")
            parts.append(e["cardinality"])
        else:
            parts.append("no values to check")
        if e.get("types") != "same":
            parts.append(f"types: {e['types']}")
        if e.get("polymorphic_with"):
            parts.append(f"polymorphic ({e['polymorphic_with']} says which table)")
        return ", ".join(parts)


@dataclass(frozen=True)
class _Candidate:
    table: str
    column: str
    ref_table: str
    ref_column: str
    pattern: str
    compare: str  # how the two types meet, see _comparison
    polymorphic_with: str | None = None


@dataclass(frozen=True)
class Probe:
    """What the data says about one candidate join (counts over the sampled rows)."""

    sampled: int
    present: int  # non-null values
    blank: int  # 0 or '' with no referenced row: "none" in schemas without NULLs
    matched: int  # values that found a row
    distinct_values: int
    distinct_matched: int


def suggest_joins(conn: psycopg.Connection, info: SchemaInfo, *,
                  sample_rows: int = SAMPLE_ROWS) -> list[JoinSuggestion]:
    """Join suggestions for every table of ``info``: declared foreign keys, then checked naming patterns.

    Sorted by confidence (highest first), then by name. One suggestion per column.
    """
    suggestions = [JoinSuggestion(table.name, fk.columns, fk.ref_table, fk.ref_columns, 1.0,
                                  {"declared": fk.name, "on_delete": fk.on_delete})
                   for table in info.tables.values() for fk in table.foreign_keys if fk.ref_schema == info.schema]
    declared = {(s.table, s.columns[0]) for s in suggestions if len(s.columns) == 1}
    candidates = [c for c in naming_candidates(info) if (c.table, c.column) not in declared]
    probes = probe(conn, info, candidates, sample_rows=sample_rows)
    best: dict[tuple[str, str], JoinSuggestion] = {}
    for candidate, found in zip(candidates, probes):
        suggestion = _suggestion(info, candidate, found)
        key = (candidate.table, candidate.column)
        if key not in best or suggestion.confidence > best[key].confidence:
            best[key] = suggestion
    suggestions += list(best.values())  # refuted readings too: their evidence says why there is no join
    return sorted(suggestions, key=lambda s: (-s.confidence, s.from_ref, s.to_ref))


def confidence(strength: float, probe: Probe | None, *, type_factor: float, polymorphic: bool) -> float:
    """How sure a naming pattern of ``strength`` is, given what the sample found.

    - share of the non-blank values that find a row: all of them keeps the pattern's strength,
      90% keeps about 70% of it, half or less leaves nothing (a real reference has few orphans);
    - distinct rows hit: one or two matching ids could be a coincidence, ten hardly are;
    - a cast between the types (text holding numbers) and a polymorphic column (a sibling
      ``*_type`` column chooses the table) each lower it;
    - with no values at all to check, the name alone is less than an even chance.
    """
    factor = type_factor * (0.6 if polymorphic else 1.0)
    checked = probe.present - probe.blank if probe else 0
    if not checked:
        return round(strength * factor * 0.5, 3)
    share = probe.matched / checked
    coverage = max(0.0, (share - 0.5) / 0.5) ** 1.5
    variety = 1 - 0.5 * math.exp(-probe.distinct_matched / 3)
    return round(strength * factor * coverage * variety, 3)


def naming_candidates(info: SchemaInfo) -> list[_Candidate]:
    """Every (column, referenced table) pair a naming pattern suggests, with the strongest pattern."""
    index = _TableIndex(info)
    found: dict[tuple[str, str, str], _Candidate] = {}
    for table in info.tables.values():
        names = {c.name for c in table.columns}
        for column in table.columns:
            if (column.name,) == table.primary_key and column.name == "id":
                continue
            split = _split_key(words(column.name))
            if split is None:
                continue
            stem, parent_key = split
            if (column.name,) == table.primary_key and index.names_table(stem, table.name):
                continue  # the table's own key (ost_staff.staff_id), not a reference
            polymorphic = next((f"{'_'.join(stem)}_{suffix}" for suffix in ("type", "class", "model")
                                if f"{'_'.join(stem)}_{suffix}" in names), None) if stem else None
            for ref_table, pattern in index.matches(table.name, stem, parent=parent_key):
                target = info.tables[ref_table]
                if len(target.primary_key) != 1:
                    continue
                ref_column = target.primary_key[0]
                if ref_table == table.name and ref_column == column.name:
                    continue
                compare = _comparison(column.data_type, target.column(ref_column).data_type)
                if compare is None:
                    continue
                key = (table.name, column.name, ref_table)
                previous = found.get(key)
                if previous is None or PATTERN_STRENGTH[pattern] > PATTERN_STRENGTH[previous.pattern]:
                    found[key] = _Candidate(table.name, column.name, ref_table, ref_column, pattern, compare,
                                            polymorphic)
    return list(found.values())


def probe(conn: psycopg.Connection, info: SchemaInfo, candidates: list[_Candidate], *,
          sample_rows: int = SAMPLE_ROWS) -> list[Probe | None]:
    """Look a bounded sample of each candidate column up in its referenced table; one statement per
    :data:`PROBES_PER_STATEMENT` candidates. ``None`` for a table the session may not read."""
    results: list[Probe | None] = [None] * len(candidates)
    readable = [i for i, c in enumerate(candidates)
                if info.tables[c.table].readable is not False and info.tables[c.ref_table].readable is not False]
    for start in range(0, len(readable), PROBES_PER_STATEMENT):
        chunk = readable[start:start + PROBES_PER_STATEMENT]
        statement = sql.SQL(" UNION ALL ").join(_probe_sql(info, candidates[i], number=i, rows=sample_rows)
                                                for i in chunk)
        for number, *counts in conn.execute(statement).fetchall():
            results[number] = Probe(*counts)
    return results


def _probe_sql(info: SchemaInfo, candidate: _Candidate, *, number: int, rows: int) -> sql.Composed:
    table = info.tables[candidate.table]
    ref = info.tables[candidate.ref_table]
    estimate = table.row_estimate if table.row_estimate is not None else table.live_rows
    sample = sql.SQL("")
    if estimate and estimate > 2 * rows:
        # pages at random (repeatably) across the whole table, sized for about ``rows`` rows: its
        # first rows are its oldest, and rows updated since sit at its end. LIMIT (twice that)
        # only bounds an estimate gone stale; as the cut, it would drop the table's end again
        percent = min(100.0, round(100.0 * rows / estimate, 4))
        sample = sql.SQL(" TABLESAMPLE SYSTEM ({}) REPEATABLE (7)").format(sql.Literal(percent))
    value = _COMPARE_SQL[candidate.compare]
    return sql.SQL(
        "(SELECT {number}, count(*), count(s.raw),"
        " count(*) FILTER (WHERE p.{key} IS NULL AND (s.raw)::text IN ('0', '')),"
        " count(p.{key}), count(DISTINCT s.raw), count(DISTINCT p.{key})"
        " FROM (SELECT c.{column} AS raw FROM {table} AS c{sample} LIMIT {rows}) AS s"
        " LEFT JOIN {ref_table} AS p ON p.{key} = {value})"
    ).format(number=sql.Literal(number), key=ident(candidate.ref_column), column=ident(candidate.column),
             table=ident(table.schema, table.name), sample=sample, rows=sql.Literal(2 * rows),
             ref_table=ident(ref.schema, ref.name), value=value)


# how a sampled value meets the referenced key: always on the key's own type, so its index is used
_COMPARE_SQL = {
    "same": sql.SQL("s.raw"),
    "numeric": sql.SQL("s.raw"),
    "text holding integers": sql.SQL("CASE WHEN btrim(s.raw) ~ '^-?[0-9]{1,18}$' THEN btrim(s.raw)::bigint END"),
    "integers against text": sql.SQL("(s.raw)::text"),
    "text holding uuids": sql.SQL(
        "CASE WHEN btrim(s.raw) ~* '^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$' THEN btrim(s.raw)::uuid END"),
}
_TYPE_FACTOR = {"same": 1.0, "numeric": 0.95, "text holding integers": 0.8, "integers against text": 0.8,
                "text holding uuids": 0.8}


def _family(data_type: str) -> str | None:
    base = data_type.split("(")[0].strip()
    if base in _INTEGER:
        return "integer"
    if base in _NUMERIC:
        return "numeric"
    if base in _TEXT:
        return "text"
    if base == "uuid":
        return "uuid"
    return None


def _comparison(child: str, parent: str) -> str | None:
    """How values of type ``child`` can be looked up in a key of type ``parent``; ``None``: they cannot."""
    a, b = _family(child), _family(parent)
    if a is None or b is None:
        return None
    if a == b:
        return "same"
    if {a, b} == {"integer", "numeric"}:
        return "numeric"
    if (a, b) == ("text", "integer"):
        return "text holding integers"
    if (a, b) == ("integer", "text"):
        return "integers against text"
    if (a, b) == ("text", "uuid"):
        return "text holding uuids"
    return None


def _suggestion(info: SchemaInfo, candidate: _Candidate, found: Probe | None) -> JoinSuggestion:
    table = info.tables[candidate.table]
    strength = PATTERN_STRENGTH[candidate.pattern]
    score = confidence(strength, found, type_factor=_TYPE_FACTOR[candidate.compare],
                       polymorphic=candidate.polymorphic_with is not None)
    evidence: dict[str, Any] = {"pattern": candidate.pattern, "pattern_strength": strength,
                                "types": candidate.compare,
                                "from_type": table.column(candidate.column).data_type,
                                "to_type": info.tables[candidate.ref_table].column(candidate.ref_column).data_type}
    if candidate.polymorphic_with:
        evidence["polymorphic_with"] = candidate.polymorphic_with
    if found is None:
        evidence["sampled"] = 0
        evidence["note"] = "not readable: the data was not checked"
    else:
        checked = found.present - found.blank
        unique = (candidate.column,) == table.primary_key or any(k.columns == (candidate.column,)
                                                                 for k in table.unique_keys)
        evidence.update({
            "sampled": found.sampled,
            "null_share": round(1 - found.present / found.sampled, 3) if found.sampled else None,
            "blank": found.blank, "checked": checked, "matched": found.matched,
            "match_share": round(found.matched / checked, 3) if checked else None,
            "distinct_values": found.distinct_values, "distinct_rows_hit": found.distinct_matched,
            "cardinality": ("one-to-one" if unique
                            else "one-to-one in the sample" if checked and found.distinct_values == found.present
                            and found.present >= 20 else "many-to-one"),
        })
    return JoinSuggestion(candidate.table, (candidate.column,), candidate.ref_table, (candidate.ref_column,),
                          score, evidence)


def _ref(table: str, columns: tuple[str, ...]) -> str:
    return f"{table}.{columns[0]}" if len(columns) == 1 else f"{table}.({', '.join(columns)})"


def _split_key(parts: list[str]) -> tuple[list[str], bool] | None:
    """``customer_id`` -> (``[customer]``, False); ``ticket_pid`` / ``parent_id`` -> (stem, True)."""
    if not parts:
        return None
    last = parts[-1]
    if last == "pid":
        return parts[:-1], True
    if last == "id" and len(parts) >= 2:
        stem = parts[:-1]
    elif last.endswith("id") and len(last) > 3 and len(parts) == 1:
        stem = [last[:-2]]  # userid, customerid
    else:
        return None
    return stem, stem[0] in _PARENT_WORDS


class _TableIndex:
    """Table names by their normalised words: shared prefix stripped, last word singular."""

    def __init__(self, info: SchemaInfo):
        names = list(info.tables)
        self.prefix = shared_prefix(names)
        self.forms = {name: self._normalise(name) for name in names}
        self.exact: dict[tuple[str, ...], list[str]] = {}
        for name, parts in self.forms.items():
            self.exact.setdefault(parts, []).append(name)

    def _normalise(self, name: str) -> tuple[str, ...]:
        parts = words(name)
        if self.prefix and parts and parts[0] == self.prefix and len(parts) > 1:
            parts = parts[1:]
        return (*parts[:-1], singular(parts[-1])) if parts else ()

    def _named(self, parts: list[str]) -> list[str]:
        return self.exact.get((*parts[:-1], singular(parts[-1])), []) if parts else []

    def names_table(self, stem: list[str], table: str) -> bool:
        """Whether ``stem`` is the (normalised) name of ``table`` itself."""
        return bool(stem) and table in self._named(stem)

    def matches(self, table: str, stem: list[str], *, parent: bool) -> list[tuple[str, str]]:
        """``(table, pattern)`` readings of a column whose name is ``stem`` + a key word."""
        if parent:
            return [(table, "parent")]
        found: list[tuple[str, str]] = []
        own = list(self.forms[table])
        expanded = [*stem[:-1], ABBREVIATIONS[stem[-1]]] if stem and stem[-1] in ABBREVIATIONS else None
        found += [(t, "name") for t in self._named(stem)]
        if expanded:
            found += [(t, "abbreviation") for t in self._named(expanded)]
        for parts in (stem, expanded):
            if not parts:
                continue
            found += [(t, "owner") for t in self._named([*own, *parts])]
            for k in range(len(parts) - 1, 0, -1):  # created_by_user -> user
                found += [(t, "role") for t in self._named(parts[-k:])]
                found += [(t, "owner") for t in self._named([*own, *parts[-k:]])]
            for k in range(len(parts), 0, -1):  # topic -> help_topic
                tail = (*parts[-k:-1], singular(parts[-1]))
                found += [(t, "suffix") for t, w in self.forms.items() if len(w) > k and w[-k:] == tail]
        return found

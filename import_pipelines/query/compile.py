"""Compile a template query (base table, joins, fields, filters) to one SELECT without parameters.

Identifiers go through :mod:`import_pipelines.db.sql`; filter values, CASE-map keys and constants
are :class:`psycopg.sql.Literal` values, quoted by the connection that runs the statement; raw
expressions are the allow-list-checked canonical text. The statement has no placeholders and is
always executed without parameters, so its literal text never goes through placeholder parsing:
``LIKE 'a%'``, ``c.id % 2`` or a constant ``'(100% unknown)'`` mean the same with and without
filters. The result names one output column per template field, in template order.
"""

from __future__ import annotations

from dataclasses import dataclass
from psycopg import sql

from import_pipelines.db.sql import ident
from import_pipelines.query.expressions import check_expression
from import_pipelines.templates.model import DateFormat, FieldSpec, Filter, Join, PhoneNumber, Query

_JOIN_SQL = {"inner": "JOIN", "left": "LEFT JOIN", "right": "RIGHT JOIN", "full": "FULL JOIN"}

_COMPARISON = {"=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "like": "LIKE", "ilike": "ILIKE",
               "not_like": "NOT LIKE", "not_ilike": "NOT ILIKE", "regex": "~", "not_regex": "!~"}

_TRANSFORMS = {
    "trim": "btrim({})",
    "upper": "upper({})",
    "lower": "lower({})",
    "nullif_empty": "NULLIF(btrim({}), '')",
    # round, not integer division: 89 s is 1 minute, not 0
    "seconds_to_minutes": "round(({})::numeric / 60)::integer",
    "to_text": "({})::text",
    "to_integer": "CASE WHEN btrim(({0})::text) ~ '^[-+]?[0-9]+$' THEN btrim(({0})::text)::bigint END",
    "digits_only": "NULLIF(regexp_replace(({})::text, '[^0-9]', '', 'g'), '')",
}


@dataclass(frozen=True)
class CompiledQuery:
    """One SELECT statement (no placeholders: execute it without parameters) and its output column names."""

    statement: sql.Composed
    columns: list[str]


def column(ref: str) -> sql.Identifier:
    """``"c.first_name"`` -> ``"c"."first_name"``."""
    alias, name = ref.split(".", 1)
    return ident(alias, name)


def compile_query(query: Query, fields: dict[str, FieldSpec], *, server_version: int = 150000) -> CompiledQuery:
    """Compile ``query`` with ``fields`` (name -> spec) to one SELECT.

    ``server_version`` (``conn.info.server_version``) decides whether JSON extraction can be
    guarded with ``pg_input_is_valid`` (PostgreSQL 16+), so a malformed JSON cell yields NULL
    instead of aborting the whole extract.
    """
    aliases = query.aliases
    select_list = [sql.SQL("{} AS {}").format(compile_field(spec, aliases=aliases, server_version=server_version),
                                               ident(name)) for name, spec in fields.items()]
    parts = [sql.SQL("SELECT DISTINCT " if query.distinct else "SELECT "), sql.SQL(", ").join(select_list), sql.SQL(" FROM "),
             _table(query.base.schema_, query.base.table), sql.SQL(" AS "), ident(query.base.alias)]
    for join in query.joins:
        parts.append(_compile_join(join, aliases=aliases))
    conditions = [_compile_filter(f) for f in query.filters]
    conditions += [sql.SQL("({})").format(sql.SQL(check_expression(w, aliases=aliases))) for w in query.where]
    if conditions:
        parts += [sql.SQL(" WHERE "), sql.SQL(" AND ").join(conditions)]
    if query.order_by:
        parts += [sql.SQL(" ORDER BY "),
                  sql.SQL(", ").join(sql.SQL(check_expression(e, aliases=aliases)) for e in query.order_by)]
    return CompiledQuery(statement=sql.Composed(parts), columns=list(fields))


def expression_sites(query: Query) -> list[tuple[str, str, set[str]]]:
    """Every raw SQL text of ``query``: (YAML path below ``query``, text, aliases it may use)."""
    aliases = query.aliases
    sites: list[tuple[str, str, set[str]]] = []
    for i, join in enumerate(query.joins):
        if join.condition:
            sites.append((f"joins[{i}].condition", join.condition, _condition_scope(join, aliases)))
        for j, text in enumerate(join.first.order_by if join.first else []):
            sites.append((f"joins[{i}].first.order_by[{j}]", text, {join.alias}))
        for j, text in enumerate(join.collect.order_by if join.collect else []):
            sites.append((f"joins[{i}].collect.order_by[{j}]", text, {join.alias}))
    sites += [(f"where[{i}]", text, aliases) for i, text in enumerate(query.where)]
    sites += [(f"order_by[{i}]", text, aliases) for i, text in enumerate(query.order_by)]
    return sites


def _condition_scope(join: Join, aliases: set[str]) -> set[str]:
    # a first-row or collecting join filters the joined table before picking its first row or
    # grouping it, so its condition may only use the joined table's own columns (the parent is
    # not in scope there)
    return {join.alias} if join.first or join.collect else aliases


def compile_field(spec: FieldSpec, *, aliases: set[str], server_version: int = 150000) -> sql.Composable:
    """The SQL expression of one field spec, transforms applied in order."""
    if spec.column is not None:
        _known_alias(spec.column, aliases)
        expr: sql.Composable = column(spec.column)
    elif spec.concat is not None:
        for ref in spec.concat:
            _known_alias(ref, aliases)
        # concat_ws skips NULLs; empty parts become NULL first so no doubled or trailing separators
        pieces = sql.SQL(", ").join(sql.SQL("NULLIF(btrim(({})::text), '')").format(column(r)) for r in spec.concat)
        expr = sql.SQL("NULLIF(btrim(concat_ws({}, {})), '')").format(sql.Literal(spec.separator), pieces)
    elif spec.case is not None:
        _known_alias(spec.case.column, aliases)
        whens = sql.SQL(" ").join(sql.SQL("WHEN {} THEN {}").format(sql.Literal(_case_key(k)), sql.Literal(v))
                                  for k, v in spec.case.map.items())
        expr = sql.SQL("CASE ({})::text {} ELSE {} END").format(column(spec.case.column), whens,
                                                               sql.Literal(spec.case.default))
    elif spec.json_ is not None:
        _known_alias(spec.json_.column, aliases)
        source = column(spec.json_.column)
        if "*" in spec.json_.path:
            # every element where the path says "*": a JSON array, through a bound jsonpath
            extract = sql.SQL("jsonb_path_query_array(({})::jsonb, {}::jsonpath)").format(
                source, sql.Literal(json_path(spec.json_.path)))
        else:
            extract = sql.SQL("({})::jsonb #>> {}").format(source, sql.Literal([str(p) for p in spec.json_.path]))
        if server_version >= 160000:
            expr = sql.SQL("CASE WHEN pg_input_is_valid(({})::text, 'jsonb') THEN {} END").format(source, extract)
        else:
            expr = sql.SQL("({})").format(extract)
    elif spec.expression is not None:
        expr = sql.SQL("({})").format(sql.SQL(check_expression(spec.expression, aliases=aliases)))
    elif spec.coalesce is not None:
        expr = sql.SQL("COALESCE({})").format(sql.SQL(", ").join(
            compile_field(s, aliases=aliases, server_version=server_version) for s in spec.coalesce))
    else:
        expr = sql.Literal(spec.value)
    for transform in spec.transform:
        if isinstance(transform, DateFormat):
            expr = sql.SQL("to_char({}, {})").format(expr, sql.Literal(transform.date_format))
        elif isinstance(transform, PhoneNumber):
            expr = phone_number(expr, country=transform.phone_country)
        else:
            expr = sql.SQL(_TRANSFORMS[transform]).format(expr)
    return expr


# an extension at the end of a number ("x12", "ext. 12", "#12") is not part of the number dialled
_PHONE_EXTENSION = "[[:space:]]*(ext\\.?|extension|x|#)[[:space:]]*[0-9]+[[:space:]]*$"
# what a number is usually written with besides its digits ('-' last: a literal in a bracket expression)
_PHONE_PUNCTUATION = " ()+./-"


def phone_number(expr: sql.Composable, *, country: str) -> sql.Composable:
    """SQL for the digits of phone number ``expr`` with its country calling code (:class:`PhoneNumber`).

    The rule of :func:`import_pipelines.dedupe.normalize.normalize_phone`, in SQL. PostgreSQL
    computes the digits as often as the expression names them (up to three times), so the usual
    value (digits and the usual punctuation only, told by one match against a character class)
    takes the cheapest way there, ``replace`` per punctuation mark (``translate`` costs more than
    the seven together); an extension or any other character takes the regular expressions, a few
    microseconds each.
    """
    value = sql.SQL("({})::text").format(expr)
    plain = sql.SQL("CASE WHEN strpos({v}, 'x') + strpos({v}, 'X') + strpos({v}, '#') > 0"
                    " THEN regexp_replace({v}, {ext}, '', 'i') ELSE {v} END").format(v=value, ext=sql.Literal(_PHONE_EXTENSION))
    usual = value
    for mark in _PHONE_PUNCTUATION:
        usual = sql.SQL("replace({}, {}, '')").format(usual, sql.Literal(mark))
    # a value holding an extension holds a letter or '#': never the usual one, so its plain form is itself
    digits = sql.SQL("CASE WHEN {v} ~ {only} THEN {u} ELSE regexp_replace({p}, '[^0-9]', '', 'g') END").format(
        v=value, only=sql.Literal(f"^[0-9{_PHONE_PUNCTUATION}]*$"), u=usual, p=plain)
    # an extension is at the end: the start of the number is the start of the value
    start = sql.SQL("btrim({}, {})").format(value, sql.Literal(" \t\r\n\f\v"))
    return sql.SQL("(CASE WHEN {s} LIKE '+%' THEN NULLIF({d}, '') WHEN {s} LIKE '00%' THEN NULLIF(substr({d}, 3), '')"
                   " WHEN length({d}) > 10 AND {d} LIKE {prefix} THEN {d} ELSE NULLIF({c} || ltrim({d}, '0'), {c})"
                   " END)").format(s=start, d=digits, c=sql.Literal(country), prefix=sql.Literal(country + "%"))


def json_path(path: list[str | int]) -> str:
    """A SQL/JSON path for ``path``: ``["*", "value"]`` -> ``$[*]."value"`` (keys quoted and escaped)."""
    parts = ["$"]
    for step in path:
        if step == "*":
            parts.append("[*]")
        elif isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append('."' + step.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "".join(parts)


def _case_key(key: str | int) -> str:
    # keys compare as text so YAML's 1 and '1' mean the same thing
    return str(key)


def _known_alias(ref: str, aliases: set[str]) -> None:
    alias = ref.split(".", 1)[0]
    if alias not in aliases:
        raise ValueError(f"column {ref!r} uses unknown table alias {alias!r} (known: {', '.join(sorted(aliases))})")


def _table(schema: str | None, table: str) -> sql.Identifier:
    return ident(schema, table) if schema else ident(table)


def _compile_join(join: Join, *, aliases: set[str]) -> sql.Composed:
    for joined, parent in join.on.items():
        _known_alias(parent, aliases)
        if joined.split(".", 1)[0] != join.alias:
            raise ValueError(f"join {join.alias!r}: the left side of 'on' ({joined!r}) must be a column of {join.alias!r}")
    on = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(column(j), column(p)) for j, p in join.on.items())
    condition = check_expression(join.condition, aliases=_condition_scope(join, aliases)) if join.condition else None
    keyword = sql.SQL(_JOIN_SQL[join.type])
    table = _table(join.schema_, join.table)
    if join.collect is not None:
        return _compile_collect(join, keyword=keyword, table=table, on=on, condition=condition)
    if join.first is None:
        extra = sql.SQL(" AND ({})").format(sql.SQL(condition)) if condition else sql.SQL("")
        return sql.SQL(" {} {} AS {} ON {}{}").format(keyword, table, ident(join.alias), on, extra)
    # one row per parent: DISTINCT ON the join columns, ordered by the template's preference;
    # set-based (one sort), where a LATERAL ... LIMIT 1 would be one index probe per parent row
    keys = [column(j) for j in join.on]
    order = [sql.SQL(check_expression(e, aliases={join.alias})) for e in join.first.order_by]
    where = sql.SQL(" WHERE {}").format(sql.SQL(condition)) if condition else sql.SQL("")
    inner = sql.SQL("SELECT DISTINCT ON ({keys}) {alias}.* FROM {table} AS {alias}{where} ORDER BY {order}").format(
        keys=sql.SQL(", ").join(keys), alias=ident(join.alias), table=table, where=where,
        order=sql.SQL(", ").join([*keys, *order]))
    return sql.SQL(" {} ({}) AS {} ON {}").format(keyword, inner, ident(join.alias), on)


def _compile_collect(join: Join, *, keyword: sql.SQL, table: sql.Identifier, on: sql.Composable,
                     condition: str | None) -> sql.Composed:
    """All joined rows per parent, their ``collect`` columns as arrays: one grouped derived table.

    Set-based like the first-row join (one aggregate over the joined table); the condition and
    the order may only use the joined table's own columns, since the parent is not in scope.
    """
    alias = ident(join.alias)
    keys = [column(j) for j in join.on]
    order = [sql.SQL(check_expression(e, aliases={join.alias})) for e in join.collect.order_by]
    ordered = sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(order)) if order else sql.SQL("")
    arrays = sql.SQL(", ").join(
        sql.SQL("array_agg({a}.{c}{o}) FILTER (WHERE {a}.{c} IS NOT NULL) AS {c}").format(
            a=alias, c=ident(name), o=ordered) for name in join.collect.columns)
    key_names = sql.SQL(", ").join(sql.SQL("{} AS {}").format(k, ident(j.split(".", 1)[1]))
                                   for k, j in zip(keys, join.on))
    where = sql.SQL(" WHERE {}").format(sql.SQL(condition)) if condition else sql.SQL("")
    inner = sql.SQL("SELECT {key_names}, {arrays} FROM {table} AS {alias}{where} GROUP BY {keys}").format(
        key_names=key_names, arrays=arrays, table=table, alias=alias, where=where, keys=sql.SQL(", ").join(keys))
    return sql.SQL(" {} ({}) AS {} ON {}").format(keyword, inner, alias, on)


def _compile_filter(flt: Filter) -> sql.Composable:
    col = column(flt.column)
    if flt.op == "is_null":
        return sql.SQL("{} IS NULL").format(col)
    if flt.op == "is_not_null":
        return sql.SQL("{} IS NOT NULL").format(col)
    if flt.op == "!=":
        return sql.SQL("{} IS DISTINCT FROM {}").format(col, sql.Literal(flt.value))
    if flt.op == "in":
        return sql.SQL("{} = ANY({})").format(col, sql.Literal(flt.value))
    if flt.op == "not_in":
        # a NULL is "not in" the list, as a data engineer reads it (plain SQL NOT IN drops it)
        return sql.SQL("({} = ANY({})) IS NOT TRUE").format(col, sql.Literal(flt.value))
    if flt.op == "between":
        low, high = flt.value
        return sql.SQL("{} BETWEEN {} AND {}").format(col, sql.Literal(low), sql.Literal(high))
    return sql.SQL("{} {} {}").format(col, sql.SQL(_COMPARISON[flt.op]), sql.Literal(flt.value))

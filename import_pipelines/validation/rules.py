"""The built-in expectations as SQL: one message per failing row, NULL for a row that passes.

Each expectation becomes a text expression over the staging row ``s``, so a whole suite is one
pass over the staging table (see :func:`import_pipelines.validation.validate_staged`). A value
that does not even read as the type an expectation compares (``between`` on ``'12 min'``) fails
it, guarded so the cast never runs on it. NULL passes every expectation but ``not_null``, as in
great-expectations. Great-expectations names with a built-in equivalent (not null, in set,
between numbers, unique) are translated, so they run here too.
"""

from __future__ import annotations

from pydantic import ValidationError
from psycopg import sql

from import_pipelines.db.sql import ident, shown_value
from import_pipelines.templates.model import RELATIVE_DATE, SQL_EXPECTS, Expectation

# great-expectations expectations with a built-in form: (built-in, {GX kwarg: built-in parameter})
GX_TO_SQL: dict[str, tuple[str, dict[str, str]]] = {
    "expect_column_values_to_not_be_null": ("not_null", {"column": "field"}),
    "expect_column_values_to_be_in_set": ("in_set", {"column": "field", "value_set": "values"}),
    "expect_column_values_to_be_between": ("between", {"column": "field", "min_value": "min", "max_value": "max"}),
    "expect_column_values_to_be_unique": ("unique", {"column": "field"}),
    "expect_compound_columns_to_be_unique": ("unique", {"column_list": "fields"}),
}

_NUMERIC = ("smallint", "integer", "bigint", "numeric", "real", "double precision")
_DATES = ("date", "timestamp without time zone", "timestamp with time zone")


def sql_form(expectation: Expectation) -> Expectation | None:
    """The built-in form of ``expectation``: itself, a translated great-expectations one, or None (GX runs it)."""
    if expectation.expect in SQL_EXPECTS:
        return expectation
    translation = GX_TO_SQL.get(expectation.expect)
    if translation is None or set(expectation.kwargs) - set(translation[1]):
        return None  # another expectation, or one with arguments the built-in has not (mostly, strict_min, ...)
    expect, names = translation
    try:
        return Expectation.model_validate({"expect": expect, **{names[k]: v for k, v in expectation.kwargs.items()}})
    except ValidationError:
        return None  # e.g. between dates given as strings: great-expectations compares them


def label(expectation: Expectation, position: int) -> str:
    """How a message names an expectation: ``in_set (validate[2])``."""
    return f"{expectation.expect} (validate[{position}])"


def failure_message(original: Expectation, built_in: Expectation, position: int, *, types: dict[str, str],
                    server_version: int, unique_column: str | None = None) -> sql.Composable:
    """Text naming the field, the expectation and the value for a row of ``s`` that fails it; else NULL.

    ``unique_column`` is the window column holding how many staged rows share the row's values
    (``unique`` only). Messages name the template's expectation (``original``), even when it runs
    in its built-in form.
    """
    name = label(original, position)
    columns = built_in.columns
    if built_in.expect == "unique":
        together = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(ident("s", c)) for c in columns)
        values = sql.SQL(" || ', ' || ").join(shown_value(ident("s", c)) for c in columns)
        return sql.SQL("CASE WHEN {t} AND s.{u} > 1 THEN {m} || {v} || {end} END").format(
            t=together, u=ident(unique_column or "_unique"), v=values,
            m=sql.Literal(f"{', '.join(columns)}: failed expectation {name}: "),
            end=sql.Literal(" is repeated in the batch"))
    parts = []
    for column in columns:
        value = ident("s", column)
        failing = _failing(built_in, value, staged_type=types.get(column, "text"), server_version=server_version)
        detail = (sql.Literal("empty") if built_in.expect == "not_null" else shown_value(value))
        parts.append(sql.SQL("CASE WHEN {f} THEN {m} || {d} END").format(
            f=failing, m=sql.Literal(f"{column}: failed expectation {name}: "), d=detail))
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("NULLIF(concat_ws('; ', {}), '')").format(sql.SQL(", ").join(parts))


# a local part and a domain of at least two labels, the last one alphabetic, no spaces anywhere
EMAIL_PATTERN = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)*\.[A-Za-z]{2,}$"


def _failing(expectation: Expectation, value: sql.Composable, *, staged_type: str,
             server_version: int) -> sql.Composable:
    """A boolean over ``value``: true when it breaks ``expectation``."""
    kind = expectation.expect
    text = sql.SQL("({})::text").format(value)
    if kind == "not_null":
        return sql.SQL("{} IS NULL").format(value)
    if kind == "email":
        return sql.SQL("{} IS NOT NULL AND {} !~ {}").format(value, text, sql.Literal(EMAIL_PATTERN))
    if kind == "matches":
        return sql.SQL("{} IS NOT NULL AND {} !~ {}").format(value, text, sql.Literal(expectation.pattern))
    if kind == "in_set":
        return sql.SQL("{} IS NOT NULL AND {} <> ALL ({}::text[])").format(
            value, text, sql.Literal([_set_text(v) for v in expectation.values or []]))
    if kind in ("between", "date_between"):
        target = "numeric" if kind == "between" else "timestamptz"
        native = staged_type.split("(")[0] in (_NUMERIC if kind == "between" else _DATES)
        typed = sql.SQL("({})::{}").format(value if native else text, sql.SQL(target))
        bound = _number if kind == "between" else _date_bound
        outside = sql.SQL(" OR ").join(
            sql.SQL("{} {} {}").format(typed, sql.SQL(op), bound(limit))
            for op, limit in (("<", expectation.min), (">", expectation.max)) if limit is not None)
        if native:
            return sql.SQL("{} IS NOT NULL AND ({})").format(value, outside)
        valid = (sql.SQL("pg_input_is_valid({}, {})") if server_version >= 160000
                 else sql.SQL("import_control.castable({}, {})")).format(text, sql.Literal(target))
        # CASE keeps the cast away from a value that does not read as a number or a date
        return sql.SQL("CASE WHEN {v} IS NULL THEN false WHEN NOT {valid} THEN true ELSE ({o}) END").format(
            v=value, valid=valid, o=outside)
    raise ValueError(f"{kind} has no SQL form")


def _set_text(value: object) -> str:
    # values are compared as text: YAML's true and 1.0 as PostgreSQL writes them
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: object) -> sql.Composable:
    return sql.SQL("{}::numeric").format(sql.Literal(str(value)))


def _date_bound(value: object) -> sql.Composable:
    """An ISO date or ``now``/``today`` plus or minus whole units, as a timestamptz expression."""
    relative = RELATIVE_DATE.match(str(value))
    if relative is None:
        return sql.SQL("{}::timestamptz").format(sql.Literal(str(value)))
    anchor, sign, count, unit = relative.groups()
    start = sql.SQL("now()" if anchor.lower() == "now" else "current_date::timestamptz")
    if sign is None:
        return start
    return sql.SQL("({} {} {}::interval)").format(start, sql.SQL(sign), sql.Literal(f"{count} {unit.lower()}s"))

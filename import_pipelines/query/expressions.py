"""Raw SQL expressions in templates: parsed with sqlglot and checked against an allow-list.

A template may write a field, a join condition, a ``where`` predicate or an ``ORDER BY`` item as
raw SQL. The source runs it inside a read-only session, but read-only is not harmless: functions
such as ``query_to_xml`` execute whole query strings, ``table_to_xml`` or a ``regclass`` cast
reach any table of the server, ``pg_stat_reset()`` has side effects and a set-returning call
multiplies rows. So nothing is refused by name; everything is *admitted* by name:

- node kinds: columns qualified by one of the entity's table aliases, plain literals, the
  arithmetic, comparison, text, pattern, JSON and boolean operators, ``CASE``, ``IN`` over a
  list, ``BETWEEN``, arrays and subscripts, and casts to plain types (:data:`ALLOWED_TYPES`);
- functions: the string, numeric, date/time, JSON and conditional functions of
  :data:`ALLOWED_FUNCTIONS`, by the name they have in the SQL that runs.

Anything else — a sub-query, an aggregate or window, a schema-qualified name, a ``(row).field``
access, a type the server resolves to an object (``regclass``, ``regproc``, user types), an
escape or dollar-quoted string whose reading could differ between sqlglot and the server — is
refused with the construct it found.

What runs is sqlglot's rendering of the checked tree, and that rendering is parsed and checked
again and must render to itself: the text that executes is exactly a text that was checked.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

# PostgreSQL function names (as the checked SQL calls them) a template expression may use; none
# is set-returning, volatile in a way that matters, or able to reach anything but its arguments
ALLOWED_FUNCTIONS: frozenset[str] = frozenset({
    # text
    "length", "char_length", "character_length", "octet_length", "lower", "upper", "initcap", "trim", "btrim",
    "ltrim", "rtrim", "lpad", "rpad", "left", "right", "substring", "substr", "position", "strpos", "replace",
    "translate", "split_part", "concat", "concat_ws", "format", "reverse", "regexp_replace", "regexp_match",
    "regexp_like", "regexp_count", "regexp_substr", "starts_with", "md5", "ascii", "chr", "normalize", "overlay",
    "encode", "decode", "quote_literal", "quote_nullable", "string_to_array", "array_to_string", "array_length",
    "cardinality", "array_position",
    # numbers
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "mod", "power", "sqrt", "exp", "ln", "log",
    "greatest", "least", "to_number", "width_bucket",
    # dates and times
    "current_date", "current_timestamp", "localtimestamp", "now", "date_trunc", "date_part", "extract", "age",
    "make_date", "make_time", "make_timestamp", "make_timestamptz", "to_char", "to_date", "to_timestamp",
    "justify_days", "justify_hours", "justify_interval", "isfinite", "timezone", "date_bin",
    # JSON
    "json_extract_path", "json_extract_path_text", "jsonb_extract_path", "jsonb_extract_path_text", "json_typeof",
    "jsonb_typeof", "json_array_length", "jsonb_array_length", "to_json", "to_jsonb", "json_build_object",
    "jsonb_build_object", "json_build_array", "jsonb_build_array", "jsonb_strip_nulls", "json_strip_nulls",
    "jsonb_path_query_first", "jsonb_path_exists",
    # conditional
    "coalesce", "nullif", "num_nulls", "num_nonnulls",
})

# plain types a cast may name: none of them is resolved through the server's catalogue
ALLOWED_TYPES: frozenset[exp.DataType.Type] = frozenset(getattr(exp.DataType.Type, name) for name in (
    "TEXT", "VARCHAR", "CHAR", "BPCHAR", "INT", "BIGINT", "SMALLINT", "DECIMAL", "FLOAT", "DOUBLE", "BOOLEAN", "DATE",
    "TIME", "TIMETZ", "TIMESTAMP", "TIMESTAMPTZ", "INTERVAL", "JSON", "JSONB", "UUID", "VARBINARY", "ARRAY"))

# words that stand for a date part or an interval unit (EXTRACT(EPOCH FROM ...), date_trunc('day', ...))
_DATE_PARTS = frozenset({
    "epoch", "millennium", "century", "decade", "year", "years", "quarter", "month", "months", "week", "weeks", "day",
    "days", "dow", "doy", "isodow", "isoyear", "hour", "hours", "minute", "minutes", "second", "seconds",
    "millisecond", "milliseconds", "microsecond", "microseconds", "timezone", "timezone_hour", "timezone_minute",
    "julian"})

# constructs that are operators or syntax, not function calls: admitted by kind
_OPERATORS: tuple[type[exp.Expression], ...] = (
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe, exp.Neg, exp.Paren,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is, exp.Between, exp.In,
    exp.And, exp.Or, exp.Not, exp.Like, exp.ILike, exp.SimilarTo, exp.RegexpLike, exp.RegexpILike,
    exp.JSONExtract, exp.JSONExtractScalar, exp.JSONBExtract, exp.JSONBExtractScalar, exp.JSONBContainsTopKey,
    exp.ArrayContainsAll, exp.JSONPath, exp.JSONPathRoot, exp.JSONPathKey, exp.JSONPathSubscript,
    exp.Array, exp.Bracket, exp.Slice, exp.Any, exp.AtTimeZone,
    exp.Case, exp.If, exp.Cast, exp.DataType, exp.DataTypeParam, exp.Interval, exp.Boolean, exp.Null,
    exp.Column, exp.Identifier,
)

_CALL_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(|$)")
_PARSE_ERROR_DETAIL = re.compile(r"\s+")


class ExpressionError(ValueError):
    """A template SQL expression that is not a single allowed scalar expression."""


def check_expression(text: str, *, aliases: set[str]) -> str:
    """Parse ``text`` as one PostgreSQL scalar expression, check it, return the SQL that runs.

    ``aliases`` are the table aliases a column may be qualified with: an unqualified column or
    one of another alias is refused, so an expression reads only tables the template joined.
    Raises :class:`ExpressionError` naming the construct that is not allowed.
    """
    tree = _parse(text)
    _check_tree(tree, text=text, aliases=aliases)
    canonical = tree.sql(dialect="postgres", comments=False)
    # the rendering is what executes: it must read back as the same checked tree
    again = _parse(canonical)
    _check_tree(again, text=text, aliases=aliases)
    if again.sql(dialect="postgres", comments=False) != canonical:
        raise ExpressionError(f"{text!r} has no stable SQL form; write it more plainly")
    return canonical


def function_name(node: exp.Func) -> str | None:
    """The name a function node calls in the SQL that runs (``None`` if it renders as no plain call)."""
    if isinstance(node, exp.Anonymous):
        name = node.this
        return name.lower() if isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else None
    match = _CALL_NAME.match(node.sql(dialect="postgres", comments=False))
    return match.group(1).lower() if match else None


def _parse(text: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    except ParseError as error:
        detail = error.errors[0]["description"] if error.errors else str(error)
        raise ExpressionError(f"{text!r} does not parse as SQL: {detail}") from None
    except TokenError as error:
        # sqlglot's message quotes the rest of the text; the reason is what helps
        reason = "an unterminated string or quoted name" if "tokeniz" in str(error).lower() else str(error)
        raise ExpressionError(f"{text!r} does not parse as SQL: {reason}") from None
    if len(statements) != 1:
        raise ExpressionError(f"{text!r} must be exactly one expression, found {len(statements)} statements")
    return statements[0]


def _check_tree(tree: exp.Expression, *, text: str, aliases: set[str]) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Column):
            _check_column(node, text=text, aliases=aliases)
        elif type(node) is exp.Literal:
            continue
        elif isinstance(node, exp.Var):
            if node.name.lower() not in _DATE_PARTS:
                raise ExpressionError(f"{text!r}: {node.name!r} is not a date part or interval unit")
        elif isinstance(node, exp.DataType):
            if node.this not in ALLOWED_TYPES:
                shown = node.sql(dialect="postgres")
                if shown.upper().startswith("REG") or shown.upper() == "OID":
                    raise ExpressionError(f"{text!r}: a cast to {shown} reaches the server's catalogue; not allowed")
                raise ExpressionError(f"{text!r}: a cast to {shown} is not allowed; only plain"
                                      " types (text, varchar, integer, bigint, numeric, boolean, date, timestamp,"
                                      " timestamptz, interval, json, jsonb, uuid, ...) are")
        elif isinstance(node, exp.ObjectIdentifier):
            raise ExpressionError(f"{text!r}: a cast to {node.name} reaches the server's catalogue; not allowed")
        elif isinstance(node, _OPERATORS):
            if isinstance(node, exp.In) and node.args.get("query") is not None:
                raise ExpressionError(f"{text!r} is not a scalar expression: it contains a sub-query")
            continue
        elif isinstance(node, (exp.AggFunc, exp.Window)):
            raise ExpressionError(f"{text!r}: aggregates and window functions are not allowed in a row expression")
        elif isinstance(node, exp.Func):
            name = function_name(node)
            if name is None or name not in ALLOWED_FUNCTIONS:
                called = name or node.sql(dialect="postgres")[:40]
                raise ExpressionError(f"{text!r} calls {called}(), which is not among the allowed functions"
                                      " (string, numeric, date/time, JSON and conditional functions)")
        else:
            raise ExpressionError(f"{text!r} is not a scalar expression: it contains {_construct(node)}")


def _check_column(node: exp.Column, *, text: str, aliases: set[str]) -> None:
    if isinstance(node.this, exp.Star):
        raise ExpressionError(f"{text!r}: {node.sql(dialect='postgres')} is a whole row, not a value")
    if node.args.get("db") is not None or node.args.get("catalog") is not None:
        raise ExpressionError(f"{text!r}: {node.sql(dialect='postgres')} names a schema; write alias.column with one"
                              f" of the entity's aliases ({', '.join(sorted(aliases))})")
    table = node.table
    if not table:
        raise ExpressionError(f"{text!r}: column {node.name!r} must be qualified with a table alias "
                              f"({', '.join(sorted(aliases))})")
    if table not in aliases:
        raise ExpressionError(f"{text!r}: unknown table alias {table!r} (known: {', '.join(sorted(aliases))})")


def _construct(node: exp.Expression) -> str:
    """A short name of a refused construct for the message."""
    names = {exp.Select: "a SELECT", exp.Subquery: "a sub-query", exp.Dot: "a qualified name or (row).field access",
             exp.Star: "*", exp.Alias: "an alias (AS ...)", exp.Ordered: "ASC/DESC"}
    for kind, label in names.items():
        if isinstance(node, kind):
            return label
    return type(node).__name__.upper()

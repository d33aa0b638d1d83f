"""Raw SQL expressions in templates: parsed with sqlglot, refused unless one scalar expression.

What runs is sqlglot's re-rendering of the parsed tree, so the text that was checked is the
text that executes; a second statement, a sub-query or a data-modifying construct never gets
through.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

# node types that make an "expression" something other than a scalar computation
_FORBIDDEN = (exp.Select, exp.Subquery, exp.Union, exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create,
              exp.Drop, exp.Alter, exp.Command, exp.Transaction, exp.Commit, exp.Rollback, exp.Into, exp.Copy,
              exp.Grant, exp.Set, exp.Use, exp.TruncateTable,
              # set-returning constructs sqlglot gives their own node types
              *(getattr(exp, name) for name in ("Unnest", "Explode", "GenerateSeries", "ExplodingGenerateSeries",
                                                "Posexplode") if hasattr(exp, name)))
# functions a scalar field has no business calling: side effects, server access, sleeping, and
# set-returning functions (one source row would fan out into many)
_FORBIDDEN_FUNCTIONS = {"pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_read_file", "pg_read_binary_file",
                        "lo_import", "lo_export", "lo_get", "lo_put", "lo_create", "lo_unlink", "dblink", "dblink_exec",
                        "pg_terminate_backend", "pg_cancel_backend", "set_config", "current_setting", "query_to_xml",
                        "pg_ls_dir", "pg_stat_file", "pg_notify", "nextval", "setval", "currval", "lastval",
                        "txid_current", "pg_current_xact_id", "generate_series", "generate_subscripts", "unnest",
                        "regexp_matches", "regexp_split_to_table", "string_to_table", "json_array_elements",
                        "json_array_elements_text", "jsonb_array_elements", "jsonb_array_elements_text", "json_each",
                        "json_each_text", "jsonb_each", "jsonb_each_text", "json_object_keys", "jsonb_object_keys",
                        "json_populate_recordset", "jsonb_populate_recordset", "json_to_recordset",
                        "jsonb_to_recordset", "jsonb_path_query", "pg_logical_emit_message"}
# whole families: advisory locks, large objects, replication and file access
_FORBIDDEN_PREFIXES = ("pg_advisory", "pg_try_advisory", "lo_", "pg_replication", "pg_file", "pg_logical")


class ExpressionError(ValueError):
    """A template SQL expression that is not a single safe scalar expression."""


def check_expression(text: str, *, aliases: set[str] | None = None) -> str:
    """Parse ``text`` as one PostgreSQL scalar expression and return its canonical SQL.

    ``aliases`` (when given) are the table aliases a column may be qualified with; an
    unqualified or unknown-alias column is refused, so an expression cannot silently read a
    column of a table the template did not join.
    """
    try:
        statements = sqlglot.parse(text, read="postgres")
    except ParseError as error:
        raise ExpressionError(f"{text!r} does not parse as SQL: {error.errors[0]['description'] if error.errors else error}") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise ExpressionError(f"{text!r} must be exactly one expression, found {len(statements)} statements")
    tree = statements[0]
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            raise ExpressionError(f"{text!r} is not a scalar expression: it contains {type(node).__name__.upper()}")
        if isinstance(node, (exp.Anonymous, exp.Func)):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_PREFIXES):
                raise ExpressionError(f"{text!r} calls {name}(), which is not allowed in a template expression")
        if aliases is not None and isinstance(node, exp.Column):
            table = node.table
            if not table:
                raise ExpressionError(f"{text!r}: column {node.name!r} must be qualified with a table alias "
                                      f"({', '.join(sorted(aliases))})")
            if table not in aliases:
                raise ExpressionError(f"{text!r}: unknown table alias {table!r} (known: {', '.join(sorted(aliases))})")
    return tree.sql(dialect="postgres")

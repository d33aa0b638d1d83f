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
              exp.Grant, exp.Set, exp.Use, exp.TruncateTable)
_FORBIDDEN_FUNCTIONS = {"pg_sleep", "pg_read_file", "pg_read_binary_file", "lo_import", "lo_export", "dblink",
                        "dblink_exec", "pg_terminate_backend", "pg_cancel_backend", "set_config", "query_to_xml",
                        "pg_ls_dir", "pg_stat_file", "nextval", "setval", "txid_current"}


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
            if name in _FORBIDDEN_FUNCTIONS:
                raise ExpressionError(f"{text!r} calls {name}(), which is not allowed in a template expression")
        if aliases is not None and isinstance(node, exp.Column):
            table = node.table
            if not table:
                raise ExpressionError(f"{text!r}: column {node.name!r} must be qualified with a table alias "
                                      f"({', '.join(sorted(aliases))})")
            if table not in aliases:
                raise ExpressionError(f"{text!r}: unknown table alias {table!r} (known: {', '.join(sorted(aliases))})")
    return tree.sql(dialect="postgres")

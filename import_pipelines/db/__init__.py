"""Database access: connections, identifier quoting, the embedded server, introspection."""

from import_pipelines.db.connect import connect, connection, drop_database, ensure_database, sqlalchemy_url, with_database
from import_pipelines.db.sql import ident, ident_list

__all__ = ["connect", "connection", "drop_database", "ensure_database", "ident", "ident_list", "sqlalchemy_url",
           "with_database"]

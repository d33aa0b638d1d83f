"""Authoring imports: inspect a source, suggest joins, scaffold a template, preview it, test a connection."""

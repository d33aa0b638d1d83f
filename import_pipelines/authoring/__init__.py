"""Authoring imports: inspect a source, suggest joins, scaffold a template, preview it, test a connection."""

from import_pipelines.authoring.connection import ConnectionReport, check_connection
from import_pipelines.authoring.fields import suggest
from import_pipelines.authoring.inspect import Catalogue, inspect_source
from import_pipelines.authoring.joins import JoinSuggestion, suggest_joins
from import_pipelines.authoring.preview import Preview, preview_template
from import_pipelines.authoring.scaffold import Scaffold, scaffold_template

__all__ = ["Catalogue", "ConnectionReport", "JoinSuggestion", "Preview", "Scaffold", "check_connection",
           "inspect_source", "preview_template", "scaffold_template", "suggest", "suggest_joins"]

"""The code location: every folder under ``defs/`` merged into one ``Definitions``."""

import dagster as dg

import import_pipelines.defs
from import_pipelines.settings import ensure_environment

# With no database URLs configured, the embedded PostgreSQL provides them (cheap when running)
ensure_environment()

defs = dg.load_defs(import_pipelines.defs)

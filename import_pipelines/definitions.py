"""The code location: every folder under ``defs/`` merged into one ``Definitions``."""

import warnings

import dagster as dg

import import_pipelines.defs
from import_pipelines.settings import ensure_environment

# With no database URLs configured, the embedded PostgreSQL provides them (cheap when running)
ensure_environment()

with warnings.catch_warnings():
    # load_from_defs_folder needs a pyproject-based dg project; this project installs with setup.py
    warnings.simplefilter("ignore", DeprecationWarning)
    defs = dg.load_defs(import_pipelines.defs)

"""import_pipelines: declarative imports into an application's PostgreSQL database, on Dagster.

Import this package cheaply: the Dagster definitions live in ``import_pipelines.definitions``.
"""

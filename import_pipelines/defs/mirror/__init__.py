"""Whole-database copy jobs: ``mirror_database``, ``export_archive`` and ``import_archive``."""

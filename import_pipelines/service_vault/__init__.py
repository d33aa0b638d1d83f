"""Service Vault, the help-desk application whose database is the import target."""

from import_pipelines.service_vault.migrate import migrate

__all__ = ["migrate"]

"""The import profiles declared in the code location (``defs/*/defs.yaml``), found by name.

A run records its profile's name, not its template; the commands that act on a past run
(``rollback``, ``retry-failed``) read the profile's template, source system and URL variables
from here, so they need only the run id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PROFILE_TYPE = "import_pipelines.components.ImportProfile"
DEFS_DIR = Path(__file__).resolve().parent.parent / "defs"


def profile_attributes(name: str, *, defs_dir: Path = DEFS_DIR) -> dict[str, Any] | None:
    """The attributes of the import profile called ``name`` (template, source_system, URL variables...),
    or ``None`` when no ``defs.yaml`` under ``defs_dir`` declares it."""
    for path in sorted(defs_dir.glob("*/defs.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("type") == PROFILE_TYPE:
                attributes = document.get("attributes") or {}
                if attributes.get("name") == name:
                    return attributes
    return None

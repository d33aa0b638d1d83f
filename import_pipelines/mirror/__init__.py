"""Load into an existing application schema with its constraints.

- :func:`mirror` copies a whole database (or some tables) into a live target whose ids differ,
  matching rows by natural key and translating every reference through natural keys.
- :func:`export_archive` / :func:`import_archive` do the same through an id-independent
  ``.tar.gz`` archive with a checksummed manifest.

Dependency order comes from the target's foreign keys; cycles and self references are broken
and late-seeded (see :mod:`import_pipelines.engine.graph` and
:mod:`import_pipelines.mirror.late_seed`).
"""

from import_pipelines.mirror.archive import ArchiveError, Manifest, ManifestTable, export_archive, import_archive
from import_pipelines.mirror.copy import DEFAULT_BATCH_ROWS, DEFAULT_WORKERS, mirror
from import_pipelines.engine.graph import Edge, LoadOrder, Reference, dependency_edges, load_order
from import_pipelines.mirror.overrides import OverrideError, load_overrides
from import_pipelines.mirror.plan import LoadPlan, TablePlan, build_plan
from import_pipelines.mirror.report import MODES, MirrorError, MirrorReport, Mode, ReferenceProblem, TableReport

__all__ = [
    "DEFAULT_BATCH_ROWS", "DEFAULT_WORKERS", "MODES", "ArchiveError", "Edge", "LoadOrder", "LoadPlan", "Manifest", "ManifestTable",
    "MirrorError", "MirrorReport", "Mode", "OverrideError", "Reference", "ReferenceProblem", "TablePlan",
    "TableReport", "build_plan", "dependency_edges", "export_archive", "import_archive", "load_order",
    "load_overrides", "mirror",
]

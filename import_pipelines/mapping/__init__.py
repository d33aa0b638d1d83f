"""Field mapping: which source column is which target field.

:func:`suggest` proposes a mapping from headers and sample rows (a saved preset, else OpenAI,
else the offline heuristic), :func:`decide` says whether it is sure enough to load and what to
run when it is not, :mod:`~import_pipelines.mapping.presets` remembers accepted mappings,
:func:`mapping_markdown` renders one for run metadata, and :class:`FieldMapper` is all of it as a
Dagster resource. Heavy pieces (openai, pycountry) load only when a suggestion needs them.
"""

from import_pipelines.mapping.decision import MappingDecision, decide
from import_pipelines.mapping.fields import CONTACT_FIELDS, template_fields
from import_pipelines.mapping.model import CUSTOM, Candidate, ColumnSuggestion, Suggestion, TargetField
from import_pipelines.mapping.overrides import MappingError
from import_pipelines.mapping.report import mapping_markdown
from import_pipelines.mapping.suggest import AISettings, suggest

__all__ = ["AISettings", "CONTACT_FIELDS", "CUSTOM", "Candidate", "ColumnSuggestion", "MappingDecision", "MappingError",
           "Suggestion", "TargetField", "decide", "mapping_markdown", "suggest", "template_fields"]

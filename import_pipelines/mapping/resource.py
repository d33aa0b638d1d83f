"""The field mapper as a Dagster resource: presets, OpenAI, the offline heuristic, and the load decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from import_pipelines.mapping.decision import COLUMN_THRESHOLD, OVERALL_THRESHOLD, MappingDecision, decide
from import_pipelines.mapping.model import Suggestion, TargetField
from import_pipelines.mapping.overrides import apply_overrides, parse_target
from import_pipelines.mapping.suggest import DEFAULT_KEY_ENV, DEFAULT_MODEL, AISettings, suggest


class FieldMapper(dg.ConfigurableResource):
    """Suggests how a source's columns map onto a template's fields, and decides whether that may load.

    A preset saved for the same headers wins; otherwise OpenAI answers when a key is configured
    (``api_key`` bound with ``dg.EnvVar("OPENAI_API_KEY")``, or the variable named by
    ``api_key_env`` read at run time), and the offline heuristic when there is no key, the call
    fails or the AI's overall confidence is under ``ai_min_confidence``. ``overrides`` are a
    person's corrections for this run (header -> field, ``custom`` or ``skip``), as printed by a
    refused run. Below ``column_threshold`` for any column or ``overall_threshold`` overall, the
    run must stop before writing: :meth:`decide` says so, with the command that accepts the mapping.
    """

    api_key: str | None = Field(default=None, description="OpenAI API key; bind with dg.EnvVar, never a literal")
    api_key_env: str = Field(default=DEFAULT_KEY_ENV, description="environment variable read when api_key is unset")
    model: str = Field(default=DEFAULT_MODEL, description="OpenAI model with structured outputs")
    base_url: str | None = Field(default=None, description="an OpenAI-compatible endpoint instead of api.openai.com")
    timeout_s: float = Field(default=30.0, description="seconds per HTTP request")
    max_retries: int = Field(default=2, description="retries of failed requests (connection errors, 429, 5xx)")
    use_ai: bool = Field(default=True, description="false: never call OpenAI")
    ai_min_confidence: float = Field(default=0.7, description="below this overall AI confidence the heuristic answers")
    column_threshold: float = Field(default=COLUMN_THRESHOLD, description="least confidence of each column to load")
    overall_threshold: float = Field(default=OVERALL_THRESHOLD, description="least overall confidence to load")
    overrides: dict[str, str] = Field(default_factory=dict, description="header -> field, 'custom' or 'skip'")

    def suggest(self, headers: Sequence[str], samples: Sequence[Sequence[Any] | Mapping[str, Any]],
                fields: Sequence[TargetField], *, template: str | None = None,
                column_types: Mapping[str, str] | None = None, conn: psycopg.Connection | None = None) -> Suggestion:
        """The suggestion for these columns, with this run's overrides applied."""
        settings = AISettings(model=self.model, api_key_env=self.api_key_env, base_url=self.base_url,
                              timeout=self.timeout_s, max_retries=self.max_retries,
                              min_confidence=self.ai_min_confidence) if self.use_ai else None
        result = suggest(headers, samples, fields, template=template, column_types=column_types, conn=conn,
                         ai=settings, api_key=self.api_key)
        if self.overrides:
            chosen = {h: parse_target(t, fields, header=h) for h, t in self.overrides.items()}
            result = apply_overrides(result, chosen, fields)
        return result

    def decide(self, suggestion: Suggestion, *, source: str, template: str, sheet: str | None = None,
               resource_key: str = "field_mapper") -> MappingDecision:
        """Whether ``suggestion`` may load under this resource's thresholds, and what to run when not.

        Columns a person set through ``overrides`` count as certain.
        """
        return decide(suggestion, source=source, template=template, sheet=sheet,
                      column_threshold=self.column_threshold, overall_threshold=self.overall_threshold,
                      resource_key=resource_key)

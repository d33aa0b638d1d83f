"""One entry point for a mapping suggestion: a saved preset, else OpenAI, else the offline heuristic.

The heuristic answers when there is no API key, when the API call fails (error, timeout,
malformed answer) and when the AI's overall confidence is under ``AISettings.min_confidence``
(70% by default); the suggestion's ``fallback_reason`` then says why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from import_pipelines.mapping.ai import AIMappingError, suggest_ai
from import_pipelines.mapping.heuristic import suggest_heuristic
from import_pipelines.mapping.model import Suggestion, TargetField
from import_pipelines.mapping.presets import apply_preset, find_preset

LOG = logging.getLogger("import_pipelines.mapping")

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class AISettings:
    """How to ask OpenAI: the model, the environment variable holding the key, limits."""

    model: str = DEFAULT_MODEL
    api_key_env: str = DEFAULT_KEY_ENV
    base_url: str | None = None       # another OpenAI-compatible endpoint (a proxy, a test server)
    timeout: float = 30.0             # seconds per HTTP request
    max_retries: int = 2
    min_confidence: float = 0.7       # below this overall confidence the heuristic answers instead


def suggest(headers: Sequence[str], samples: Sequence[Sequence[Any] | Mapping[str, Any]],
            fields: Sequence[TargetField], *, template: str | None = None,
            column_types: Mapping[str, str] | None = None, conn: psycopg.Connection | None = None,
            ai: AISettings | None = AISettings(), api_key: str | None = None,
            log: logging.Logger = LOG) -> Suggestion:
    """Suggest how ``headers`` map onto ``fields``.

    ``conn`` (a target connection) and ``template`` look up a saved preset first; ``ai`` None
    skips OpenAI; ``api_key`` overrides the key from ``ai.api_key_env`` (a resource passes the
    value it got through ``dg.EnvVar``). ``samples`` are a few rows, as sequences in header order
    or mappings by header; ``column_types`` are declared types by header (database sources).
    """
    if conn is not None and template is not None:
        preset = find_preset(conn, template=template, headers=headers)
        if preset is not None:
            log.info("field mapping from preset %r", preset.name)
            return apply_preset(preset, headers)
    reason = None
    if ai is not None:
        key = api_key or os.environ.get(ai.api_key_env)
        if not key:
            reason = f"no OpenAI API key in ${ai.api_key_env}"
        else:
            try:
                answer = suggest_ai(headers, samples, fields, api_key=key, model=ai.model, base_url=ai.base_url,
                                    timeout=ai.timeout, max_retries=ai.max_retries, column_types=column_types)
            except AIMappingError as exc:
                reason = str(exc)
            else:
                if answer.overall_confidence >= ai.min_confidence:
                    return answer
                reason = (f"the AI's overall confidence {answer.overall_confidence:.2f} is under "
                          f"{ai.min_confidence:.2f}")
        log.warning("field mapping by the offline heuristic: %s", reason)
    result = suggest_heuristic(headers, samples, fields, column_types=column_types)
    return result.model_copy(update={"fallback_reason": reason})

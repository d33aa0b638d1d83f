"""Step retries: a transient database failure runs the step again, anything else fails it at once.

Every import step carries :data:`STEP_RETRY_POLICY` (exponential backoff with jitter), and runs
inside :func:`retry_transient_only`, which lets a transient error
(:func:`~import_pipelines.db.transient.is_transient`: a dropped connection, a server restart, a
serialisation failure, a deadlock) reach the policy and turns every other error into a
``dg.Failure(allow_retries=False)``: a template error or a broken error budget fails the same
way every time, so it fails once, with its own message, instead of three times.

The steps are safe to run again: extract recreates its staging table, map and dedupe rewrite
their marks, and a load goes on from the batches that committed (each batch commits with its
audit rows; a batch found committed is counted, not merged again).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from import_pipelines.db.transient import is_transient

STEP_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@contextmanager
def retry_transient_only(step: str) -> Iterator[None]:
    """Run an import step's body: transient errors go to the step's retry policy, others fail it once."""
    from import_pipelines.engine.budget import ErrorBudgetExceeded

    try:
        yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except ErrorBudgetExceeded as error:
        raise dg.Failure(description=str(error), allow_retries=False, metadata={
            "error_rate": dg.MetadataValue.float(round(error.rate, 4)),
            "max_error_rate": dg.MetadataValue.float(error.budget),
            "processed": dg.MetadataValue.int(error.processed), "failed": dg.MetadataValue.int(error.failed),
            "common_errors": dg.MetadataValue.md("\n".join(f"- {count:,} x {message}"
                                                           for message, count in error.top_errors) or "none")}) from error
    except Exception as error:
        if is_transient(error):
            raise  # the step's retry policy runs it again
        raise dg.Failure(description=f"{step}: {type(error).__name__}: {error}", allow_retries=False) from error

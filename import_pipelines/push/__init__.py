"""Records pushed by another system: a job whose run config carries them, and the command that submits it.

The body is the seed API's ``POST /imports/bulk``: ``contacts`` (the records), ``duplicate_strategy``
(``skip`` / ``update`` / ``create_new``), ``duplicate_match_fields`` and ``external_id`` (the
pushing system's id for this batch). A profile whose source is ``{kind: push}`` takes it in its
``<profile>_push`` resource (:class:`BulkPush`); ``python -m import_pipelines push FILE.json``
submits it to a running instance through the GraphQL API, or runs it in process, and prints the
run id at once.
"""

from import_pipelines.push.request import BODY_KEYS, BulkPush, push_run_config, read_body

__all__ = ["BODY_KEYS", "BulkPush", "push_run_config", "read_body"]

"""Corpus kind ``url``: a database URL a profile might be given, opened as the source would be.

``url`` may use ``{pw}`` (the secret every message is searched for) and ``{server}`` (the test
server as a URL with that password). ``expect`` is ``error: <fragment>`` or ``connects: true``;
either way no message, traceback or chained exception may hold any part of the password.
"""

from __future__ import annotations

import traceback

from import_pipelines.db.connect import DatabaseConnectionError, connect
from import_pipelines_tests.components.test_secrets import PASSWORD, leaks, with_password
from import_pipelines_tests.corpus.loader import Case, Context, runner


@runner("url")
def run(case: Case, ctx: Context) -> None:
    """Open the URL as a profile's source; check the outcome and that nothing leaks."""
    url = case.spec["url"].format(pw=PASSWORD, server=with_password(ctx.pg_server, PASSWORD))
    purpose = "source of profile corpus"
    if case.expect.get("connects"):
        with connect(url, read_only=True, purpose=purpose) as conn:
            assert conn.execute("SELECT current_setting('default_transaction_read_only')").fetchone() == ("on",)
        return
    try:
        connect(url, purpose=purpose).close()
    except DatabaseConnectionError as error:
        text = "".join(traceback.format_exception(error))
        assert str(error).startswith(f"cannot connect to the {purpose}")
        assert case.expect["error"] in str(error), str(error)
        assert leaks(text) == [] and error.__context__ is None
        return
    raise AssertionError(f"{case.id}: {url!r} connected")

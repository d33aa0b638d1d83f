"""Which database errors are worth retrying: the session went away, or the server picked the
transaction as a victim and another attempt will likely pass.

Transient: a lost connection (SQLSTATE class 08, or a libpq error without any SQLSTATE, which is
how "server closed the connection unexpectedly" arrives), the server terminating or restarting
the session (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now), a
serialisation failure (40001) and a deadlock (40P01). Everything else — a template error, a
constraint, a cast, a cancelled statement, a refused login — fails the same way every time, and
is not retried.
"""

from __future__ import annotations

import psycopg

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03"})
TRANSIENT_CLASSES = ("08",)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or the database error it was raised from) is worth another attempt."""
    seen = 0
    while error is not None and seen < 5:  # an error wrapped by our own code keeps its cause
        if isinstance(error, psycopg.Error):
            transient = getattr(error, "transient", None)  # a connection that could not be opened says
            if transient is not None:
                return bool(transient)
            state = error.sqlstate
            if state:
                return state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_CLASSES)
            return isinstance(error, psycopg.OperationalError)
        error, seen = error.__cause__, seen + 1
    return False

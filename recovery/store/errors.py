"""Which store errors pass: a lock wait cut short, a deadlock or serialization failure, a busy
or locked SQLite file, a lost connection, a full pool. Retrying the same work later succeeds;
parking the work as failed would lose it."""

from __future__ import annotations

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import (
    TimeoutError as PoolTimeout,
)

# PostgreSQL SQLSTATE classes and codes that say "try again": 08 connection exception, 40
# transaction rollback (deadlock 40P01, serialization failure 40001), 53 insufficient resources,
# 57 operator intervention (query cancelled by statement_timeout, server shutting down), 55P03
# lock not available (lock_timeout, NOWAIT).
_PG_CLASSES = frozenset({"08", "40", "53", "57"})
_PG_CODES = frozenset({"55P03", "55006"})


def is_transient_store_error(exc: BaseException) -> bool:
    """True when ``exc`` is the store's trouble rather than the work's: the work should stay
    where it is and be tried again."""
    if isinstance(exc, DisconnectionError | PoolTimeout | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        # The driver's OperationalError: SQLite's busy/locked/I/O errors, PostgreSQL's lock,
        # deadlock, resource and connection errors.
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(code, str) and (code[:2] in _PG_CLASSES or code in _PG_CODES)

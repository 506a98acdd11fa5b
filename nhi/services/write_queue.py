"""Queue the authorize writers of one SQLite file behind an OS file lock.

SQLite lets one writer in at a time and makes the others poll with sleeps of 1 to 100 ms
(its busy handler), which collapses throughput as soon as two processes write at once. Waiting
on ``flock`` instead hands the turn over the moment the previous writer commits. Correctness
does not depend on this: SQLite's own lock still serialises every write. PostgreSQL (row locks)
needs none of it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nhi.extensions import db

_guard = threading.Lock()  # flock does not exclude threads sharing one open file
_files: dict[str, int] = {}


def _lock_path() -> str | None:
    url = db.engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return f"{database}.writers.lock"


@contextmanager
def serialized_writes() -> Iterator[None]:
    """Hold the writers' turn for the database of the current session (no-op off SQLite)."""
    path = _lock_path()
    if path is None:
        yield
        return
    with _guard:
        fd = _files.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            _files[path] = fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

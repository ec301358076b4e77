"""One run at a time per warehouse: a lock file beside the DuckDB file, an advisory lock on PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import zlib
from collections.abc import Iterator

from loaders.settings import Settings
from loaders.warehouse import connect


class RunLocked(RuntimeError):
    """Another `elt` run holds the warehouse."""


@contextlib.contextmanager
def run_lock(settings: Settings) -> Iterator[None]:
    if settings.target == "duckdb":
        path = settings.duckdb_path.with_name(settings.duckdb_path.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLocked(f"another elt run holds {path}") from None
            yield
        return
    key = zlib.crc32(b"elt-run")
    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute("select pg_try_advisory_lock(%s)", (key,))
        if not cursor.fetchone()[0]:
            raise RunLocked("another elt run holds the PostgreSQL advisory lock")
        try:
            yield
        finally:
            cursor.execute("select pg_advisory_unlock(%s)", (key,))

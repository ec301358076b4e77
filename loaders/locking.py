"""Two locks per warehouse.

- The **run lock**: one `elt` command that writes (run, load, build, replay) at a time. A second one is
  refused at once (exit code LOCKED) rather than queued: a scheduler that fires while the previous run is
  still going should skip, not pile up. A lock file beside the DuckDB file; an advisory lock on
  PostgreSQL; on Spark, which has no locks, a lock file in the state folder (one scheduler host).
- The **writer lock**: every writer of the warehouse, whoever started it — the loaders while they load,
  and every dbt model and seed, including a plain `dbt build` started by hand from the project root
  (the project's own pre-hook `serialize_writers()` takes it inside each model's transaction). A second
  writer waits. This is what lets a model read "the loads I have not consumed" and record them as
  consumed without a load committing in between. On DuckDB the database file itself admits one
  writing process at a time; the harness's loaders and dbt take turns under the run lock. Spark has no
  lock a dbt model could wait on: there the run lock alone orders the loaders and dbt, and a plain
  `dbt build` started by hand beside a running `elt` command is not kept apart from its loads.
"""

from __future__ import annotations

import contextlib
import fcntl
import zlib
from collections.abc import Iterator

from loaders.settings import Settings
from loaders.warehouse import RunLocked, connect

__all__ = ["RunLocked", "run_lock", "writer_lock"]

# The same name as the dbt macro `writer_lock_name()`; PostgreSQL's hashtext() makes it the lock key.
WRITER_LOCK_NAME = "elt:warehouse-writer"


@contextlib.contextmanager
def run_lock(settings: Settings) -> Iterator[None]:
    if settings.target in ("duckdb", "spark"):
        path = (
            settings.duckdb_path.with_name(settings.duckdb_path.name + ".lock")
            if settings.target == "duckdb"
            else settings.pipelines_dir().with_name(settings.pipelines_dir().name + ".lock")
        )
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


@contextlib.contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """Wait until no other writer (a dbt model, another loader) holds the warehouse, then hold it."""
    if settings.target != "postgres":
        yield  # DuckDB's own file lock: one writing process at a time; Spark: the run lock only
        return
    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute("select pg_advisory_lock(hashtext(%s))", (WRITER_LOCK_NAME,))
        try:
            yield
        finally:
            cursor.execute("select pg_advisory_unlock(hashtext(%s))", (WRITER_LOCK_NAME,))

"""Two locks per warehouse (each dialect says how it takes them).

- The **run lock**: one `elt` command that writes at a time. A second one is refused at once (exit code
  LOCKED) rather than queued: a scheduler that fires while the previous run is still going should skip,
  not pile up. A lock file beside the DuckDB file; an advisory lock on PostgreSQL; on Spark, which has no
  locks, a lock file in the state folder (one scheduler host).
- The **writer lock**: every writer of the warehouse, whoever started it — the loaders while they load,
  and every dbt model and seed, including a plain `dbt build` started by hand from the project root
  (the project's own pre-hook `serialize_writers()` takes it inside each model's transaction). A second
  writer waits. This is what lets a model read "the loads I have not consumed" and record them as
  consumed without a load committing in between. On DuckDB the database file itself admits one
  writing process at a time; the harness's loaders and dbt take turns under the run lock. Spark has no
  lock a dbt model could wait on: there the run lock alone orders the loaders and dbt.
"""

from __future__ import annotations

import contextlib

from loaders.core.outcomes import RunLocked
from loaders.core.settings import Settings
from loaders.warehouse import dialect
from loaders.warehouse.base import HeldLock

__all__ = ["HeldLock", "RunLocked", "run_lock", "writer_lock"]


def run_lock(settings: Settings) -> contextlib.AbstractContextManager[HeldLock]:
    return dialect(settings).run_lock()


def writer_lock(settings: Settings) -> contextlib.AbstractContextManager[None]:
    return dialect(settings).writer_lock()

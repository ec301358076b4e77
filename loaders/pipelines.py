"""Wiring: which dlt source goes to which raw dataset of which warehouse.

Sources know nothing of the warehouse; this module gives each one a pipeline whose destination comes
from the one warehouse configuration (`Settings`), the same one dbt's `profiles.yml` reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dlt
from dlt.common.schema.typing import C_DLT_LOAD_ID, LOADS_TABLE_NAME, PIPELINE_STATE_TABLE_NAME
from dlt.common.storages.exceptions import StorageException
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from loaders.entities import SOURCE_NAMES, dlt_source
from loaders.settings import Settings
from loaders.sources.landing import DEAD_LETTERS_TABLE

SOURCES: dict[str, Callable[[], Any]] = {name: dlt_source(name) for name in SOURCE_NAMES}

# dbt's incremental models find new raw versions by their load id; dlt's Arrow path omits the
# column unless asked.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


@dataclass(frozen=True)
class LoadReport:
    """What one `load_source` call landed: the packages a crash left behind, then the new extract.

    `landed`/`dead_lettered` and `load_ids` cover both; `resumed_load_ids` names the packages that were
    finished rather than extracted by this call (empty when nothing was pending).
    """

    source: str
    landed: int
    dead_lettered: int
    load_ids: tuple[str, ...]
    resumed_load_ids: tuple[str, ...] = ()

    @property
    def extracted(self) -> int:
        return self.landed + self.dead_lettered

    @property
    def resumed_packages(self) -> int:
        return len(self.resumed_load_ids)


def destination(settings: Settings) -> Any:
    if settings.target == "duckdb":
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(credentials=str(settings.duckdb_path))
    return dlt.destinations.postgres(credentials=settings.postgres.dlt_credentials())


def raw_dataset(source: str) -> str:
    return f"raw_{source}"


def pipeline(settings: Settings, source: str) -> dlt.Pipeline:
    settings.pipelines_dir().mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=pipeline_name(source),
        destination=destination(settings),
        dataset_name=raw_dataset(source),
        pipelines_dir=str(settings.pipelines_dir()),
    )


class LocalStateDamaged(RuntimeError):
    """dlt's local working folder was left half-written by a killed run."""


def load_source(settings: Settings, source: str, on_reset: Callable[..., None] | None = None) -> LoadReport:
    """Land one source: first the packages a crashed run left behind, then what is new, in one call.

    dlt's `run` loads pending packages and returns without extracting, so a scheduler calling it once
    per run would land data that arrived during the outage only a run later. Here the pending
    packages are loaded first (their cursors and manifests are already in the local state, committed
    with them), then the source is extracted from there and loaded.

    A run killed while dlt was writing its local working folder can leave it unreadable (a schema
    file missing, a state file cut short). That folder is only a cache of what the destination holds:
    dlt restores the cursor state and schema from the last *completed* load in the warehouse. So the
    folder is discarded and the source extracted again from that committed cursor; anything the lost
    packages held is re-read from the source and merges onto itself.
    """
    try:
        return _run(settings, source)
    except LocalStateDamaged as damaged:
        if on_reset is not None:
            on_reset(reason=str(damaged))
        shutil.rmtree(settings.pipelines_dir() / pipeline_name(source), ignore_errors=True)
        return _run(settings, source)


def pipeline_name(source: str) -> str:
    return f"elt_{source}"


def _run(settings: Settings, source: str) -> LoadReport:
    step = "attach"
    try:
        pipe = pipeline(settings, source)
        step = "resume"
        _forget_uncommitted_state_rows(pipe)
        resumed = pipe.run()  # no data: syncs with the destination, loads pending packages if any
        resumed_ids = tuple(resumed.loads_ids) if resumed is not None else ()
        resumed_counts = _landed_counts(pipe, resumed_ids)
        step = "run"
        pipe.run(SOURCES[source]())
        new_counts, new_ids = _trace_counts(pipe)
    except Exception as exc:
        cause = innermost_cause(exc)
        failed_step = getattr(exc, "step", step)
        if failed_step != "extract" and isinstance(cause, (OSError, StorageException, json.JSONDecodeError)):
            raise LocalStateDamaged(f"{type(cause).__name__} at dlt step {failed_step}") from exc
        raise
    counts = dict(resumed_counts)
    for table, count in new_counts.items():
        counts[table] = counts.get(table, 0) + count
    dead = counts.pop(DEAD_LETTERS_TABLE, 0)
    return LoadReport(source, sum(counts.values()), dead, resumed_ids + new_ids, resumed_ids)


def backfill_pipeline_name(source: str, slot: int = 0) -> str:
    """The pipeline of a backfill's chunks; one per concurrent worker (`slot`), so chunks landing at
    once never share a dlt working folder, and never the source's own pipeline, whose cursor state and
    manifest a backfill must not move."""
    return f"elt_{source}_backfill_{slot}"


def load_window(
    settings: Settings,
    source: str,
    start: datetime,
    end: datetime,
    slot: int = 0,
    load_lock: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> LoadReport:
    """Land the versions of one source whose version time falls in `[start, end)`, through the backfill
    pipeline `slot`: the source reads the window (see `landing.Window`), raw merges on (key, version) as
    for every load, so landing a window twice changes nothing the second time.

    The working folder is emptied first: a package a killed backfill left there is not this chunk's and
    must not be loaded under its name (the chunk it belonged to is re-extracted by `elt backfill
    --resume`). Extract and normalize run outside `load_lock`; only the load into the warehouse holds it.
    """
    settings.pipelines_dir().mkdir(parents=True, exist_ok=True)
    name = backfill_pipeline_name(source, slot)
    shutil.rmtree(settings.pipelines_dir() / name, ignore_errors=True)
    pipe = dlt.pipeline(
        pipeline_name=name,
        destination=destination(settings),
        dataset_name=raw_dataset(source),
        pipelines_dir=str(settings.pipelines_dir()),
    )
    pipe.extract(SOURCES[source](start=start, end=end))
    normalized = pipe.normalize()
    with load_lock():
        loaded = pipe.load()
    counts = {
        table: count
        for table, count in (normalized.row_counts if normalized is not None else {}).items()
        if not table.startswith("_dlt")
    }
    dead = counts.pop(DEAD_LETTERS_TABLE, 0)
    return LoadReport(source, sum(counts.values()), dead, tuple(loaded.loads_ids) if loaded is not None else ())


def innermost_cause(exc: BaseException) -> BaseException:
    """dlt wraps a source's or a storage's own error in several layers; this is the one that says why."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _forget_uncommitted_state_rows(pipe: dlt.Pipeline) -> None:
    """Delete the state rows that pending packages already wrote, so their resume can write them again.

    A load job commits in the warehouse, then dlt records locally that it is done; a kill between the
    two makes the resume run the job again. Data tables merge from a staging table, so that is
    harmless, but `_dlt_pipeline_state` is appended to and its `_dlt_id` is unique on PostgreSQL: the
    repeated insert would fail the package on every run after. Rows of a load that is not in
    `_dlt_loads` are not state yet (dlt restores state only from completed loads), and the package
    that wrote them writes them again.
    """
    pending = tuple(pipe.list_normalized_load_packages())
    if not pending:
        return
    placeholders = ", ".join(["%s"] * len(pending))
    with pipe.sql_client() as client:
        if not client.has_dataset():
            return
        state = client.make_qualified_table_name(PIPELINE_STATE_TABLE_NAME)
        loads = client.make_qualified_table_name(LOADS_TABLE_NAME)
        # no such table: killed before the first load created them, nothing to forget
        with contextlib.suppress(DatabaseUndefinedRelation):
            client.execute_sql(
                f"delete from {state} where {C_DLT_LOAD_ID} in ({placeholders})"
                f" and {C_DLT_LOAD_ID} not in (select load_id from {loads})",
                *pending,
            )


def _trace_counts(pipe: dlt.Pipeline) -> tuple[dict[str, int], tuple[str, ...]]:
    """Rows per data table as the last run normalized them, and the load ids it loaded."""
    counts: dict[str, int] = {}
    load_ids: list[str] = []
    for step in pipe.last_trace.steps:
        info = step.step_info
        if step.step == "normalize" and info is not None:
            for table, count in info.row_counts.items():
                if not table.startswith("_dlt"):
                    counts[table] = counts.get(table, 0) + count
        if step.step == "load" and info is not None:
            load_ids.extend(info.loads_ids)
    return counts, tuple(load_ids)


def _landed_counts(pipe: dlt.Pipeline, load_ids: tuple[str, ...]) -> dict[str, int]:
    """Rows per data table that these (resumed) packages hold in the warehouse.

    A package normalized by the killed run has no counts in this process; the warehouse has them,
    stamped with the package's load id, until a later load replaces those versions.
    """
    if not load_ids:
        return {}
    tables = [table["name"] for table in pipe.default_schema.data_tables() if C_DLT_LOAD_ID in table.get("columns", {})]
    placeholders = ", ".join(["%s"] * len(load_ids))
    counts: dict[str, int] = {}
    with pipe.sql_client() as client:
        for table in tables:
            rows = client.execute_sql(
                f"select count(*) from {client.make_qualified_table_name(table)}"
                f" where {C_DLT_LOAD_ID} in ({placeholders})",
                *load_ids,
            )
            counts[table] = int(rows[0][0]) if rows else 0
    return counts


def cursor_positions(settings: Settings, source: str) -> dict[str, Any]:
    """Where each resource of a source stands, from the local dlt state (the last load this machine made
    or restored): an incremental's `last_value`, or a file manifest's size and next delivery number."""
    try:
        state = pipeline(settings, source).state
    except Exception:  # no local state yet, or a damaged one (load_source resets it): nothing to show
        return {}
    positions: dict[str, Any] = {}
    for source_state in state.get("sources", {}).values():
        for resource, resource_state in source_state.get("resources", {}).items():
            if "files" in resource_state:
                files, next_seq = len(resource_state["files"]), resource_state.get("next_seq")
                positions[resource] = {"files": files, "next_seq": next_seq}
            for cursor, incremental in resource_state.get("incremental", {}).items():
                positions[f"{resource}.{cursor}"] = incremental.get("last_value")
    return positions

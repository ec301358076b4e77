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
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

import dlt
from dlt.common.schema.typing import C_DLT_LOAD_ID, LOADS_TABLE_NAME, PIPELINE_STATE_TABLE_NAME
from dlt.common.storages.exceptions import StorageException
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from loaders import lake
from loaders.entities import SOURCE_NAMES, dlt_source
from loaders.settings import Settings
from loaders.sources.landing import DEAD_LETTERS_TABLE, HANDED_OVER

SOURCES: dict[str, Callable[[], Any]] = {name: dlt_source(name) for name in SOURCE_NAMES}

# dbt's incremental models find new raw versions by their load id; dlt's Arrow path omits the
# column unless asked.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


@dataclass(frozen=True)
class PackageCounts:
    """What the warehouse holds of some load packages, counted there after the load.

    `landed`/`dead_lettered`: rows of the data tables / of `dead_letters` under the packages' load ids.
    `staged`: rows the packages put in the staging dataset, where dlt merges from (it keeps the last
    package's rows until the next load). `collapsed`: staged rows the merge left out because a later row
    of the same package had the same primary key (a record served twice in one extraction).
    """

    landed: int = 0
    dead_lettered: int = 0
    staged: int = 0
    collapsed: int = 0

    def __add__(self, other: PackageCounts) -> PackageCounts:
        return PackageCounts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class LoadReport:
    """What one `load_source` call landed: the packages a crash left behind, then the new extract.

    `landed`/`dead_lettered`/`collapsed` (counted in the warehouse) and `load_ids` cover both;
    `extracted` is what the source handed over in this call (counted by the source before dlt saw it)
    plus what the resumed packages staged; `resumed_load_ids` names the packages that were finished
    rather than extracted by this call (empty when nothing was pending).
    """

    source: str
    landed: int
    dead_lettered: int
    load_ids: tuple[str, ...]
    resumed_load_ids: tuple[str, ...] = ()
    extracted: int = 0
    collapsed: int = 0

    @property
    def resumed_packages(self) -> int:
        return len(self.resumed_load_ids)


def destination(settings: Settings) -> Any:
    if settings.target == "duckdb":
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        credentials = DuckDbCredentials(
            str(settings.duckdb_path), global_config={"memory_limit": settings.duckdb_memory_limit}
        )
        return dlt.destinations.duckdb(credentials=credentials)
    if settings.target == "spark":
        return dlt.destinations.filesystem(bucket_url=settings.lake_path)  # Parquet files Spark reads (loaders/lake.py)
    _adbc_copies_row_group_by_row_group()  # before any package is loaded, a resumed one included
    return dlt.destinations.postgres(credentials=settings.postgres.dlt_credentials())


def _adbc_copies_row_group_by_row_group() -> None:
    """Two amendments to dlt 1.31's ADBC copy of a Parquet file into PostgreSQL:

    - it hands the driver the whole file, which reads it into memory at once (1.1 GB of the loaders'
      peak at 1M orders, 0.35 GB without ADBC); copied row group by row group (the loaders' 25,000-row
      tables, landing.BATCH_ROWS), in the same transaction, as dlt already does for SQL Server, the
      memory stays that of one row group;
    - it fails on a file of zero rows ("Must pass schema, or at least one RecordBatch"), which the
      loaders yield so that a table exists (landing.Batch.finish): such a file has nothing to copy."""
    import pyarrow.parquet as pq
    from dlt.destinations.impl.postgres.postgres import PostgresParquetCopyJob

    if getattr(PostgresParquetCopyJob.run, "skips_empty_files", False):
        return
    PostgresParquetCopyJob._ingest_per_rowgroup = True
    copy = PostgresParquetCopyJob.run

    def run(self: PostgresParquetCopyJob) -> None:
        if pq.ParquetFile(self._file_path).metadata.num_rows > 0:
            copy(self)

    run.skips_empty_files = True  # type: ignore[attr-defined]
    PostgresParquetCopyJob.run = run  # type: ignore[method-assign]


def loader_file_format(settings: Settings) -> str | None:
    """How landed Arrow tables travel to the warehouse. DuckDB reads dlt's Parquet files itself. On
    PostgreSQL dlt would rewrite every Parquet file as CSV or INSERT statements in its normalize step (3.8 s
    of 8.1 s for 100,000 orders); with the ADBC driver installed (a dependency) it copies the Parquet
    in as it is (the whole load 4.5 s), amended as `_adbc_copies_row_group_by_row_group` says. Spark reads
    the Parquet files themselves."""
    return None if settings.target == "duckdb" else "parquet"


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
        if settings.target != "spark":  # in the lake a state file written again replaces itself
            _forget_uncommitted_state_rows(pipe)
        resumed = pipe.run()  # no data: syncs with the destination, loads pending packages if any
        resumed_ids = tuple(resumed.loads_ids) if resumed is not None else ()
        resumed_counts = package_counts(settings, pipe, resumed_ids)
        step = "run"
        HANDED_OVER.pop(source, None)
        pipe.run(SOURCES[source](), loader_file_format=loader_file_format(settings))
        handed_over = HANDED_OVER.pop(source, 0)
        new_ids = _trace_load_ids(pipe)
        new_counts = package_counts(settings, pipe, new_ids)
        drop_loaded_packages(pipe)
        if settings.target == "spark":
            lake.register_tables(settings, raw_dataset(source))
    except Exception as exc:
        cause = innermost_cause(exc)
        failed_step = getattr(exc, "step", step)
        if failed_step != "extract" and isinstance(cause, (OSError, StorageException, json.JSONDecodeError)):
            raise LocalStateDamaged(f"{type(cause).__name__} at dlt step {failed_step}") from exc
        raise
    counts = resumed_counts + new_counts
    return LoadReport(
        source,
        counts.landed,
        counts.dead_lettered,
        resumed_ids + new_ids,
        resumed_ids,
        # the killed run that extracted the resumed packages counted nothing this process knows of: what
        # they staged is what they were handed
        extracted=handed_over + resumed_counts.staged,
        collapsed=counts.collapsed,
    )


def backfill_schema_name(source: str) -> str:
    """The dlt schema a backfill's loads go under (`_dlt_loads.schema_name`), so a reader tells them from
    the scheduled loads, and the source's own schema in `_dlt_version` is never a backfill's."""
    return f"{pipeline_name(source)}_backfill"


def backfill_pipeline_name(source: str, slot: int = 0) -> str:
    """The pipeline of a backfill's chunks; one per concurrent worker (`slot`), so chunks landing at
    once never share a dlt working folder, and never the source's own pipeline, whose cursor state and
    manifest a backfill must not move."""
    return f"{backfill_schema_name(source)}_{slot}"


def backfill_pipeline(settings: Settings, source: str, slot: int) -> dlt.Pipeline:
    settings.pipelines_dir().mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=backfill_pipeline_name(source, slot),
        destination=destination(settings),
        dataset_name=raw_dataset(source),
        pipelines_dir=str(settings.pipelines_dir()),
    )


def finish_backfill_packages(
    settings: Settings,
    source: str,
    load_lock: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> tuple[str, ...]:
    """Load the packages a killed backfill left in its pipelines' folders; their load ids.

    A load job that committed before the kill has merged rows into raw under a load id that is not
    complete, and staging shows only rows of complete loads: until the package completes, the versions
    it replaced are hidden — and a source that no longer serves them cannot bring them back. So the
    package is finished, as `load_source` finishes the source's own. A folder a kill left unreadable is
    only a cache and is dropped (its chunk is re-extracted by `elt backfill --resume`).
    """
    finished: list[str] = []
    prefix = f"{backfill_schema_name(source)}_"
    folders = sorted(settings.pipelines_dir().glob(f"{prefix}*")) if settings.pipelines_dir().is_dir() else []
    for folder in folders:
        slot = folder.name.removeprefix(prefix)
        if not slot.isdigit():
            continue
        try:
            pipe = backfill_pipeline(settings, source, int(slot))
            if not pipe.has_pending_data:
                continue
            with load_lock():
                _forget_uncommitted_state_rows(pipe)
                info = pipe.run()  # no data: normalizes and loads what is pending
        except Exception as exc:
            cause = innermost_cause(exc)
            if getattr(exc, "step", None) == "load" or not isinstance(
                cause, (OSError, StorageException, json.JSONDecodeError)
            ):
                raise
            shutil.rmtree(folder, ignore_errors=True)
            continue
        finished.extend(info.loads_ids if info is not None else ())
    return tuple(finished)


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

    The working folder is emptied first (`finish_backfill_packages` has loaded what a killed backfill
    left there): what this call loads is this chunk's alone. Extract and normalize run outside
    `load_lock`; only the load into the warehouse holds it.
    """
    shutil.rmtree(settings.pipelines_dir() / backfill_pipeline_name(source, slot), ignore_errors=True)
    pipe = backfill_pipeline(settings, source, slot)
    pipe.extract(
        SOURCES[source](start=start, end=end).clone(with_name=backfill_schema_name(source)),
        loader_file_format=loader_file_format(settings),
    )
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


def drop_loaded_packages(pipe: dlt.Pipeline) -> None:
    """Delete the packages dlt keeps in its working folder after loading them (their job files, state and
    schema): what they held is committed in the warehouse, which is also where dlt restores state from, so
    the folder holds only what is pending and does not grow run after run."""
    storage = pipe._get_load_storage()  # dlt has no public call for it
    for load_id in storage.list_loaded_packages():
        storage.delete_loaded_package(load_id)


def _trace_load_ids(pipe: dlt.Pipeline) -> tuple[str, ...]:
    """The load ids the last run of the pipeline loaded."""
    load_ids: list[str] = []
    for step in pipe.last_trace.steps:
        if step.step == "load" and step.step_info is not None:
            load_ids.extend(step.step_info.loads_ids)
    return tuple(load_ids)


def package_counts(settings: Settings, pipe: dlt.Pipeline, load_ids: tuple[str, ...]) -> PackageCounts:
    """Count in the warehouse what these just-loaded packages hold (see PackageCounts): every data table
    with their load ids, in the dataset and in its staging dataset. In Spark's lake, the packages' files:
    appended, nothing staged or collapsed there (staging keeps one row per version)."""
    if not load_ids:
        return PackageCounts()
    if settings.target == "spark":
        landed, dead = lake.landed_and_dead_lettered(settings, pipe.dataset_name, load_ids)
        return PackageCounts(landed, dead, landed + dead, 0)
    schema = pipe.default_schema
    tables = [table["name"] for table in schema.data_tables() if C_DLT_LOAD_ID in table.get("columns", {})]
    ids = ", ".join(["%s"] * len(load_ids))
    landed = dead = staged = collapsed = 0
    with pipe.sql_client() as client:
        for table in tables:
            key = ", ".join(
                client.escape_column_name(name)
                for name, column in schema.get_table_columns(table).items()
                if column.get("primary_key")
            )
            (count,) = client.execute_sql(
                f"select count(*) from {client.make_qualified_table_name(table)} where {C_DLT_LOAD_ID} in ({ids})",
                *load_ids,
            )[0]
            if table == DEAD_LETTERS_TABLE:
                dead += int(count)
            else:
                landed += int(count)
            with client.with_staging_dataset(), contextlib.suppress(DatabaseUndefinedRelation):
                rows, distinct = client.execute_sql(
                    f"select count(*), count(distinct ({key})) from {client.make_qualified_table_name(table)}"
                    f" where {C_DLT_LOAD_ID} in ({ids})",
                    *load_ids,
                )[0]
                staged += int(rows)
                collapsed += int(rows) - int(distinct)
    return PackageCounts(landed, dead, staged, collapsed)


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

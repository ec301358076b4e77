"""The one dlt pipeline factory, and landing a source through it: resume what a crash left, then extract.

Sources know nothing of the warehouse: each pipeline's destination comes from the one warehouse
configuration (`Settings`, through the target's dialect), the same one dbt's `profiles.yml` reads. Every
pipeline of the project is made by `make_pipeline`: a source's scheduled loads (`elt_<source>`, whose state
holds its cursors and manifests), a backfill's chunks and a dead-letter replay, each with a name of its own
(loaders/core/registry.py) so none moves another's state.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.parquet as pq
from dlt.common.storages.exceptions import StorageException
from dlt.common.storages.load_package import ParsedLoadJobFileName

from loaders.core.outcomes import innermost_cause
from loaders.core.registry import (
    DEAD_LETTERS_TABLE,
    backfill_pipeline_name,
    backfill_schema_name,
    pipeline_name,
    raw_dataset,
)
from loaders.core.settings import Settings
from loaders.landing.batch import BATCH_ROWS, Tally
from loaders.landing.spec import SourceSpec
from loaders.warehouse import dialect
from loaders.warehouse.base import PackageCounts

RECORD_COLUMN = "_record"  # a landed row's record as it arrived (loaders/landing/batch.py)
DEAD_LETTER_SAMENESS = "error"  # beside its id (which digests the record's text): why it was refused

# dbt's incremental models find new raw versions by their load id; dlt's Arrow path omits the
# column unless asked.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


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
    # rows the new extract read again exactly as raw holds them (a cursor's lag re-reads them), left out
    # of the load: they change nothing (None: not compared, e.g. in Spark's lake)
    unchanged: int | None = None

    @property
    def resumed_packages(self) -> int:
        return len(self.resumed_load_ids)


def make_pipeline(settings: Settings, name: str, source: str) -> dlt.Pipeline:
    """The pipeline `name` landing into the raw dataset of `source`, in this warehouse's working folder."""
    warehouse = dialect(settings)
    folder = warehouse.pipelines_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=name,
        destination=warehouse.dlt_destination(),
        dataset_name=raw_dataset(source),
        pipelines_dir=str(folder),
    )


def pipeline(settings: Settings, source: str) -> dlt.Pipeline:
    """The source's own pipeline, whose state holds its cursors and manifests."""
    return make_pipeline(settings, pipeline_name(source), source)


class LocalStateDamaged(RuntimeError):
    """dlt's local working folder was left half-written by a killed run."""


def load_source(
    settings: Settings, spec: SourceSpec, tally: Tally, on_reset: Callable[..., None] | None = None
) -> LoadReport:
    """Land one source: first the packages a crashed run left behind, then what is new, in one call.

    dlt's `run` loads pending packages and returns without extracting, so a scheduler calling it once
    per run would land data that arrived during the outage only a run later. Here the pending
    packages are loaded first (their cursors and manifests are already in the local state, committed
    with them), then the source is extracted from there and loaded. The source counts what it hands to
    dlt (and the requests it retried) in `tally`.

    A run killed while dlt was writing its local working folder can leave it unreadable (a schema
    file missing, a state file cut short). That folder is only a cache of what the destination holds:
    dlt restores the cursor state and schema from the last *completed* load in the warehouse. So the
    folder is discarded and the source extracted again from that committed cursor; anything the lost
    packages held is re-read from the source and merges onto itself.
    """
    try:
        return _run(settings, spec, tally)
    except LocalStateDamaged as damaged:
        if on_reset is not None:
            on_reset(reason=str(damaged))
        shutil.rmtree(dialect(settings).pipelines_dir() / pipeline_name(spec.name), ignore_errors=True)
        return _run(settings, spec, tally)


def _run(settings: Settings, spec: SourceSpec, tally: Tally) -> LoadReport:
    warehouse = dialect(settings)
    step = "attach"
    try:
        pipe = pipeline(settings, spec.name)
        step = "resume"
        warehouse.forget_uncommitted_state_rows(pipe)
        resumed_collapsed = warehouse.collapse_packages(pipe)
        resumed = pipe.run()  # no data: syncs with the destination, loads pending packages if any
        resumed_ids = tuple(resumed.loads_ids) if resumed is not None else ()
        resumed_counts = warehouse.package_counts(pipe, resumed_ids) + collapsed_rows(resumed_collapsed)
        step = "extract"
        tally.known_tables = known_tables(pipe)
        before = tally.handed_over
        pipe.extract(spec.dlt_source(tally=tally), **extract_formats(settings))
        handed_over = tally.handed_over - before
        step = "normalize"
        normalized = pipe.normalize()
        pending = tuple(normalized.loads_ids) if normalized is not None else ()
        unchanged = sum_or_none(drop_unchanged(settings, pipe, load_id) for load_id in pending)
        new_collapsed = warehouse.collapse_packages(pipe)
        step = "load"
        loaded = pipe.load()
        new_ids = tuple(loaded.loads_ids) if loaded is not None else ()
        new_counts = warehouse.package_counts(pipe, new_ids) + collapsed_rows(new_collapsed)
        drop_loaded_packages(pipe)
        written = resumed_counts + new_counts
        if written.landed or written.dead_lettered or not warehouse.raw_ready(raw_dataset(spec.name)):
            warehouse.after_load(raw_dataset(spec.name), pipe.default_schema)
    except Exception as exc:
        cause = innermost_cause(exc)
        failed_step = getattr(exc, "step", step)
        if failed_step != "extract" and isinstance(cause, (OSError, StorageException, json.JSONDecodeError)):
            raise LocalStateDamaged(f"{type(cause).__name__} at dlt step {failed_step}") from exc
        raise
    counts = resumed_counts + new_counts
    return LoadReport(
        spec.name,
        counts.landed,
        counts.dead_lettered,
        resumed_ids + new_ids,
        resumed_ids,
        # the killed run that extracted the resumed packages counted nothing this process knows of: what
        # they staged is what they were handed
        extracted=handed_over + resumed_counts.staged,
        collapsed=counts.collapsed,
        unchanged=unchanged,
    )


def extract_formats(settings: Settings) -> dict[str, Any]:
    """How dlt writes what a source hands over, for the warehouse: its file format, and its table format
    (Spark's lake: Delta tables)."""
    warehouse = dialect(settings)
    return {"loader_file_format": warehouse.loader_file_format(), "table_format": warehouse.table_format()}


def collapsed_rows(count: int) -> PackageCounts:
    """Rows the warehouse left out of packages before they loaded (`Dialect.collapse_packages`): staged by
    the package, replaced by a later row of their key."""
    return PackageCounts(staged=count, collapsed=count)


def known_tables(pipe: dlt.Pipeline) -> frozenset[str]:
    """The tables a load of this pipeline has already created (none before its first load)."""
    if pipe.default_schema_name is None:
        return frozenset()
    return frozenset(pipe.default_schema.data_table_names())


def import_frame_libraries() -> None:
    """Import pandas (when it is installed) in this thread, before threads land packages side by side.

    dlt tells a data frame from other items by looking `pandas` up in `sys.modules`, and pyarrow imports
    pandas lazily the first time it converts Python objects. Two threads landing at once can then meet
    halfway: one is importing pandas while the other finds it in `sys.modules` without its `DataFrame`
    ("partially initialized module 'pandas'"), and that chunk fails. Imported first, nothing is half-done.
    Without pandas there is no race and nothing to import."""
    if importlib.util.find_spec("pandas") is not None:
        importlib.import_module("pandas")


def backfill_pipeline(settings: Settings, source: str, slot: int) -> dlt.Pipeline:
    return make_pipeline(settings, backfill_pipeline_name(source, slot), source)


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
    warehouse = dialect(settings)
    finished: list[str] = []
    prefix = f"{backfill_schema_name(source)}_"
    folder_root = warehouse.pipelines_dir()
    folders = sorted(folder_root.glob(f"{prefix}*")) if folder_root.is_dir() else []
    for folder in folders:
        slot = folder.name.removeprefix(prefix)
        if not slot.isdigit():
            continue
        try:
            pipe = backfill_pipeline(settings, source, int(slot))
            if not pipe.has_pending_data:
                continue
            with load_lock():
                warehouse.forget_uncommitted_state_rows(pipe)
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
    spec: SourceSpec,
    start: datetime,
    end: datetime,
    slot: int = 0,
    load_lock: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> LoadReport:
    """Land the versions of one source whose version time falls in `[start, end)`, through the backfill
    pipeline `slot`: the source reads the window (see `batch.Window`), raw merges on (key, version) as
    for every load, so landing a window twice changes nothing the second time.

    The working folder is emptied first (`finish_backfill_packages` has loaded what a killed backfill
    left there): what this call loads is this chunk's alone. Extract and normalize run outside
    `load_lock`; only the load into the warehouse holds it.
    """
    warehouse = dialect(settings)
    shutil.rmtree(warehouse.pipelines_dir() / backfill_pipeline_name(spec.name, slot), ignore_errors=True)
    pipe = backfill_pipeline(settings, spec.name, slot)
    pipe.extract(
        spec.dlt_source(tally=Tally(), start=start, end=end).clone(with_name=backfill_schema_name(spec.name)),
        **extract_formats(settings),
    )
    normalized = pipe.normalize()
    warehouse.collapse_packages(pipe)
    with load_lock():
        loaded = pipe.load()
    counts = {
        table: count
        for table, count in (normalized.row_counts if normalized is not None else {}).items()
        if not table.startswith("_dlt")
    }
    dead = counts.pop(DEAD_LETTERS_TABLE, 0)
    return LoadReport(spec.name, sum(counts.values()), dead, tuple(loaded.loads_ids) if loaded is not None else ())


def land_resources(settings: Settings, name: str, source: str, resources: list[Any]) -> str:
    """Merge ready-made resources into a source's raw dataset through the pipeline `name`, whose folder
    carries nothing from one call to the next (a dead-letter replay); the load id."""
    warehouse = dialect(settings)
    shutil.rmtree(warehouse.pipelines_dir() / name, ignore_errors=True)
    pipe = make_pipeline(settings, name, source)
    info = pipe.run(resources, **extract_formats(settings))
    return info.loads_ids[-1]


def drop_loaded_packages(pipe: dlt.Pipeline) -> None:
    """Delete the packages dlt keeps in its working folder after loading them (their job files, state and
    schema): what they held is committed in the warehouse, which is also where dlt restores state from, so
    the folder holds only what is pending and does not grow run after run."""
    storage = pipe._get_load_storage()  # dlt has no public call for it
    for load_id in storage.list_loaded_packages():
        storage.delete_loaded_package(load_id)


def drop_unchanged(settings: Settings, pipe: dlt.Pipeline, load_id: str) -> int | None:
    """Leave out of a normalized package, before it loads, the rows raw already holds exactly: the same
    (key, version), the same record as it arrived, the same cursor value; and the dead letters it already
    holds, the same record refused for the same reason (the same id, which digests the record's text, and
    the same error). A cursor's lag re-reads them on every run; landing them again would write nothing new,
    give their keys to every model to judge again, and count an old refusal as a new one in the run's
    dead-letter rate. Such a record is not delivered again, as an unchanged file is not read again: its
    delivery is when it was first taken. Returns how many rows were left out (None: the warehouse cannot
    compare)."""
    storage = pipe._get_load_storage().normalized_packages  # dlt has no public call for a package's files
    schema = pipe.default_schema
    dropped: int | None = 0
    for job in storage.list_new_jobs(load_id):
        parsed = ParsedLoadJobFileName.parse(job)
        if parsed.table_name.startswith("_dlt"):
            continue
        columns = schema.get_table_columns(parsed.table_name)
        keys = [name for name, column in columns.items() if column.get("primary_key")]
        record = DEAD_LETTER_SAMENESS if parsed.table_name == DEAD_LETTERS_TABLE else RECORD_COLUMN
        if parsed.file_format != "parquet" or not keys or record not in columns:
            return None
        left_out = _leave_out_unchanged(
            settings, pipe, parsed.table_name, storage.storage.make_full_path(job), keys, record
        )
        if left_out is None:
            return None
        dropped = None if dropped is None else dropped + left_out
    return dropped


def _leave_out_unchanged(
    settings: Settings, pipe: dlt.Pipeline, table: str, path: str, keys: list[str], record: str
) -> int | None:
    """`drop_unchanged` for one Parquet file of a package, read batch by batch so that a loader's memory
    stays bounded by a batch whatever the size of the load: first the keys (one look-up in raw), then, only
    when raw holds some of them, which rows to keep, then, only when one is left out, the file rewritten (or,
    when every row is, removed: the package then loads no job for that table)."""
    file = pq.ParquetFile(path)
    if file.metadata.num_rows == 0:
        return 0
    keyed = file.read(columns=keys).group_by(keys).aggregate([])
    landed = dialect(settings).landed_identities(pipe, table, keyed, record)
    if not landed:  # None: the warehouse cannot compare; {}: none of these keys landed yet (a first load)
        return None if landed is None else 0
    compared = [*keys, record, *(["_cursor_at"] if "_cursor_at" in file.schema_arrow.names else [])]
    masks = [unchanged_mask(batch, keys, landed, record) for batch in file.iter_batches(BATCH_ROWS, columns=compared)]
    left_out = sum(mask.count(False) for mask in masks)
    if left_out == file.metadata.num_rows:  # nothing left to load: no job, so no merge of an empty table
        os.remove(path)
    elif left_out:
        temporary = f"{path}.kept"
        with pq.ParquetWriter(temporary, file.schema_arrow) as writer:
            for batch, keep in zip(file.iter_batches(BATCH_ROWS), masks, strict=True):
                writer.write_table(pa.Table.from_batches([batch]).filter(pa.array(keep)), row_group_size=BATCH_ROWS)
        os.replace(temporary, path)  # whole or not at all: a crash here leaves the package as it was
    return left_out


def unchanged_mask(
    rows: pa.Table | pa.RecordBatch, keys: list[str], landed: dict[tuple[Any, ...], Any], record: str = RECORD_COLUMN
) -> list[bool]:
    """Per row, whether to keep it: False when raw holds its key with the same `record` text and cursor."""
    if not landed:
        return [True] * rows.num_rows
    key_values = zip(*(rows.column(name).to_pylist() for name in keys), strict=True)
    records = rows.column(record).to_pylist()
    cursors = rows.column("_cursor_at").to_pylist() if "_cursor_at" in rows.column_names else [None] * rows.num_rows
    keep = []
    for key, text, cursor_at in zip(key_values, records, cursors, strict=True):
        held = landed.get(key)
        same = held is not None and held == (md5_text(text), cursor_at)
        keep.append(not same)
    return keep


def md5_text(text: str | None) -> str | None:
    return None if text is None else hashlib.md5(text.encode("utf-8", "surrogatepass")).hexdigest()


def sum_or_none(counts: Iterable[int | None]) -> int | None:
    total: int | None = 0
    for count in counts:
        total = None if count is None or total is None else total + count
    return total


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


def pending_packages(settings: Settings, source: str) -> int:
    """Packages of the source extracted or normalized but not loaded (a crash left them)."""
    try:
        pipe = pipeline(settings, source)
        return len(pipe.list_extracted_load_packages()) + len(pipe.list_normalized_load_packages())
    except Exception:  # no working folder yet
        return 0

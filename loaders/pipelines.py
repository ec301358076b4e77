"""Wiring: which dlt source goes to which raw dataset of which warehouse.

Sources know nothing of the warehouse; this module gives each one a pipeline whose destination comes
from the one warehouse configuration (`Settings`), the same one dbt's `profiles.yml` reads.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.common.storages.exceptions import StorageException

from loaders.settings import Settings
from loaders.sources.app_db import app_db
from loaders.sources.landing import DEAD_LETTERS_TABLE
from loaders.sources.payments_files import payments_files
from loaders.sources.shop_api import shop_api

SOURCES: dict[str, Callable[[], Any]] = {
    "shop_api": shop_api,
    "app_db": app_db,
    "payments_files": payments_files,
}

# dbt's incremental models find new raw versions by their load id; dlt's Arrow path omits the
# column unless asked.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


@dataclass(frozen=True)
class LoadReport:
    source: str
    landed: int
    dead_lettered: int
    load_ids: tuple[str, ...]

    @property
    def extracted(self) -> int:
        return self.landed + self.dead_lettered


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
    """Land one source. Packages a crashed run left behind are finished first (dlt's resume).

    A run killed while dlt was writing its local working folder can leave it unreadable (a schema
    file missing, a state file cut short). That folder is only a cache of what the destination holds:
    dlt restores the cursor state and schema from the last *completed* load in the warehouse. So the
    folder is discarded and the source extracted again from that committed cursor; anything the lost
    packages held is re-read from the source and merges onto itself.
    """
    try:
        pipe = _run(settings, source)
    except LocalStateDamaged as damaged:
        if on_reset is not None:
            on_reset(reason=str(damaged))
        shutil.rmtree(settings.pipelines_dir() / pipeline_name(source), ignore_errors=True)
        pipe = _run(settings, source)
    return _report(pipe, source)


def pipeline_name(source: str) -> str:
    return f"elt_{source}"


def _run(settings: Settings, source: str) -> dlt.Pipeline:
    step = "attach"
    try:
        pipe = pipeline(settings, source)
        step = "run"
        pipe.run(SOURCES[source]())
        return pipe
    except Exception as exc:
        cause = innermost_cause(exc)
        failed_step = getattr(exc, "step", step)
        if failed_step != "extract" and isinstance(cause, (OSError, StorageException, json.JSONDecodeError)):
            raise LocalStateDamaged(f"{type(cause).__name__} at dlt step {failed_step}") from exc
        raise


def innermost_cause(exc: BaseException) -> BaseException:
    """dlt wraps a source's or a storage's own error in several layers; this is the one that says why."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _report(pipe: dlt.Pipeline, source: str) -> LoadReport:
    counts: dict[str, int] = {}
    load_ids: list[str] = []
    for step in pipe.last_trace.steps:
        info = step.step_info
        if step.step == "normalize" and info is not None:
            for table, count in info.row_counts.items():
                counts[table] = counts.get(table, 0) + count
        if step.step == "load" and info is not None:
            load_ids.extend(info.loads_ids)
    dead = counts.pop(DEAD_LETTERS_TABLE, 0)
    landed = sum(count for table, count in counts.items() if not table.startswith("_dlt"))
    return LoadReport(source, landed, dead, tuple(load_ids))

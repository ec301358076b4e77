"""Wiring: which dlt source goes to which raw dataset of which warehouse.

Sources know nothing of the warehouse; this module gives each one a pipeline whose destination comes
from the one warehouse configuration (`Settings`), the same one dbt's `profiles.yml` reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dlt

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
        pipeline_name=f"elt_{source}",
        destination=destination(settings),
        dataset_name=raw_dataset(source),
        pipelines_dir=str(settings.pipelines_dir()),
    )


def load_source(settings: Settings, source: str) -> LoadReport:
    """Land one source. Packages a crashed run left behind are finished first (dlt's resume)."""
    pipe = pipeline(settings, source)
    pipe.run(SOURCES[source]())
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

"""Spark's raw layer: the loaders land each source as Parquet files in a lake folder, Spark reads them as tables.

dlt's `filesystem` destination writes `<lake>/raw_<source>/<table>/<load_id>.<file_id>.parquet`, and the
load's completion record last, as a JSON line in `<lake>/raw_<source>/_dlt_loads/` — the same `_dlt_loads`
table staging filters on everywhere, so the rows of a load that did not complete stay invisible. Without
a table format (Delta, Iceberg) dlt cannot merge files, so raw is appended to: a re-delivered (key, version)
is a second row, and staging keeps the one delivered last (`macros/staging.sql`, `one_row_per_landed_key`).

After each load the source's tables are registered in Spark's catalog (`Spark.after_load`: external
tables over their folders, created once) and refreshed, so Spark lists the new files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from loaders.core.registry import DEAD_LETTERS_TABLE, LOADS_TABLE
from loaders.core.settings import Settings


@dataclass(frozen=True)
class LakeTable:
    name: str
    location: str
    file_format: str  # Spark's data source: parquet, or json for dlt's own records


def _filesystem(settings: Settings) -> tuple[Any, str]:
    fs, root = url_to_fs(settings.lake_path)
    return fs, root.rstrip("/")


def dataset_location(settings: Settings, dataset: str) -> str:
    return f"{settings.lake_path.rstrip('/')}/{dataset}"


def lake_tables(settings: Settings, dataset: str) -> list[LakeTable]:
    """The tables dlt has written in the dataset's folder: every data table, and the loads' records."""
    fs, root = _filesystem(settings)
    folder = f"{root}/{dataset}"
    if not fs.isdir(folder):
        return []
    tables = []
    for path in sorted(fs.ls(folder, detail=False)):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if not fs.isdir(path) or (name.startswith("_dlt") and name != LOADS_TABLE):
            continue
        tables.append(
            LakeTable(
                name, f"{dataset_location(settings, dataset)}/{name}", "json" if name == LOADS_TABLE else "parquet"
            )
        )
    return tables


def rows_per_table(settings: Settings, dataset: str, load_ids: Iterable[str]) -> dict[str, int]:
    """The rows each table of the dataset holds under these load ids, read from the Parquet files' footers
    (dlt names every file after its load id)."""
    fs, root = _filesystem(settings)
    counts: dict[str, int] = {}
    for load_id in load_ids:
        for path in fs.glob(f"{root}/{dataset}/*/{load_id}.*.parquet"):
            table = path.rsplit("/", 2)[-2]
            with fs.open(path, "rb") as handle:
                counts[table] = counts.get(table, 0) + pq.ParquetFile(handle).metadata.num_rows
    return counts


def landed_and_dead_lettered(settings: Settings, dataset: str, load_ids: Iterable[str]) -> tuple[int, int]:
    counts = rows_per_table(settings, dataset, load_ids)
    dead = counts.pop(DEAD_LETTERS_TABLE, 0)
    return sum(counts.values()), dead

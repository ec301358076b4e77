"""Spark's raw layer: the loaders land each source as Delta tables in a lake folder, Spark reads them as tables.

dlt's `filesystem` destination with the `delta` table format (the deltalake package) writes
`<lake>/raw_<source>/<table>/` as a Delta table and merges each load into it on the table's primary key
(key, `_version`), as it merges raw on DuckDB and PostgreSQL: a re-delivered version replaces itself. dlt's
only merge strategy there is `upsert` (update the matching row, insert the others), which it picks by
itself for these tables, so the loaders' hints are the same on every warehouse. Unlike the SQL destinations'
`delete-insert`, it does not de-duplicate a package first: rows of one package that share a key would both be
inserted (or both match one row). `collapse_package` leaves out all but the one the hints say wins — the
greatest `_delivery_seq` (`dedup_sort`) — before the package loads.

The load's completion record is written last, as a JSON line in `<lake>/raw_<source>/_dlt_loads/` — the same
`_dlt_loads` table staging filters on everywhere, so the rows of a load that did not complete stay
invisible (a merge that committed its rows but not its record shows them to no model until the package is
finished). After each load the source's tables are registered in Spark's catalog (`Spark.after_load`:
`using delta` tables over their folders, created once: dropping one never deletes a file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.common.schema.typing import C_DLT_LOAD_ID
from dlt.common.storages.load_package import ParsedLoadJobFileName
from dlt.destinations.exceptions import DestinationUndefinedEntity
from fsspec.core import url_to_fs

from loaders.core.registry import DEAD_LETTERS_TABLE, LOADS_TABLE
from loaders.core.settings import Settings

TABLE_FORMAT = "delta"
DELTA_LOG = "_delta_log"
REWRITE_ROWS = 100_000  # rows per batch when a package file is rewritten without its left-out rows


@dataclass(frozen=True)
class LakeTable:
    name: str
    location: str
    file_format: str  # Spark's data source: delta, json for dlt's own records, parquet for a lake landed before


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
        if name == LOADS_TABLE:
            file_format = "json"
        else:
            file_format = TABLE_FORMAT if fs.isdir(f"{path.rstrip('/')}/{DELTA_LOG}") else "parquet"
        tables.append(LakeTable(name, f"{dataset_location(settings, dataset)}/{name}", file_format))
    return tables


def rows_per_table(pipe: dlt.Pipeline, load_ids: Iterable[str]) -> dict[str, int]:
    """The rows each Delta table of the pipeline's dataset holds under these load ids (after a merge: the
    rows these loads inserted or replaced), read from the tables' current versions."""
    ids = pa.array(list(load_ids), pa.string())
    counts: dict[str, int] = {}
    with pipe.destination_client() as client:
        for table in pipe.default_schema.data_tables():
            name = table["name"]
            if not client.is_open_table(TABLE_FORMAT, name):  # type: ignore[attr-defined]
                continue
            try:
                delta = client.load_open_table(TABLE_FORMAT, name)  # type: ignore[attr-defined]
            except DestinationUndefinedEntity:  # no load has written the table yet
                continue
            dataset = delta.to_pyarrow_dataset()
            if C_DLT_LOAD_ID in dataset.schema.names:
                counts[name] = dataset.count_rows(filter=pc.field(C_DLT_LOAD_ID).isin(ids))
    return counts


def landed_and_dead_lettered(pipe: dlt.Pipeline, load_ids: Iterable[str]) -> tuple[int, int]:
    counts = rows_per_table(pipe, load_ids)
    dead = counts.pop(DEAD_LETTERS_TABLE, 0)
    return sum(counts.values()), dead


def collapse_packages(pipe: dlt.Pipeline) -> int:
    """`collapse_package` for every normalized package pending in the pipeline's folder; the rows left out.
    Packages an earlier run extracted but did not normalize are normalized first, so that none loads
    uncollapsed (dlt's `run` would normalize and load them in one go)."""
    pipe.normalize()
    return sum(collapse_package(pipe, load_id) for load_id in pipe.list_normalized_load_packages())


def collapse_package(pipe: dlt.Pipeline, load_id: str) -> int:
    """Leave out of a normalized package, before it loads, every row of a merged table that a later row of the
    same package replaces: per primary key, the row with the greatest (or least) `dedup_sort` column is kept,
    as dlt's `delete-insert` keeps it on the SQL destinations. Files are rewritten only where a row is left
    out, each whole or not at all, so running it again on a collapsed package changes nothing. Returns how
    many rows were left out."""
    storage = pipe._get_load_storage().normalized_packages  # dlt has no public call for a package's files
    schema = pipe.default_schema
    files: dict[str, list[str]] = {}
    for job in storage.list_new_jobs(load_id):
        parsed = ParsedLoadJobFileName.parse(job)
        if not parsed.table_name.startswith("_dlt") and parsed.file_format == "parquet":
            files.setdefault(parsed.table_name, []).append(storage.storage.make_full_path(job))
    left_out = 0
    for table, paths in files.items():
        hints = schema.tables.get(table, {})
        columns = hints.get("columns", {})
        keys = [name for name, column in columns.items() if column.get("primary_key")]
        if hints.get("write_disposition") != "merge" or not keys:
            continue
        # a hint of the resource's may name a column one of its tables does not have (dead letters)
        present = set(pq.read_schema(paths[0]).names)
        order = [
            f'"{name}" {column["dedup_sort"]}'
            for name, column in columns.items()
            if column.get("dedup_sort") and name in present
        ]
        left_out += _collapse_files(sorted(paths), keys, order)
    return left_out


def _collapse_files(paths: list[str], keys: list[str], order: list[str]) -> int:
    """Find with DuckDB, over all the table's files of the package, the rows a later one of their key
    replaces (ties, and tables without a `dedup_sort`, keep the last row in file order); rewrite the files
    that hold one with pyarrow, so the file keeps dlt's Arrow schema exactly."""
    partition = ", ".join(f'"{name}"' for name in keys)
    ranking = ", ".join([*order, "filename desc", "file_row_number desc"])
    with duckdb.connect() as con:
        replaced = con.execute(
            "select filename, file_row_number from read_parquet(?, filename = true, file_row_number = true)"
            f" qualify row_number() over (partition by {partition} order by {ranking}) > 1",
            [paths],
        ).fetchall()
    if not replaced:
        return 0
    dropped: dict[str, set[int]] = {}
    for filename, row in replaced:
        dropped.setdefault(filename, set()).add(int(row))
    for path, rows in dropped.items():
        file = pq.ParquetFile(path)
        temporary = f"{path}.collapsed"
        start = 0
        with pq.ParquetWriter(temporary, file.schema_arrow) as writer:
            for batch in file.iter_batches(REWRITE_ROWS):
                keep = pa.array([start + i not in rows for i in range(batch.num_rows)])
                writer.write_table(pa.Table.from_batches([batch]).filter(keep))
                start += batch.num_rows
        os.replace(temporary, path)  # whole or not at all: a crash here leaves the package as it was
    return len(replaced)

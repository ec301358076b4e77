"""`elt move --from-duckdb PATH`: carry a DuckDB deployment's landed history into PostgreSQL, then rebuild.

Loading the same sources again would not give the same tables (the sources serve their present, not the
versions DuckDB landed), so a move copies every `raw_<source>` table in one transaction and rebuilds with
`--full-refresh` (docs/commands.md, "move").
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from loaders.core.outcomes import CommandFailed, ExitCode, UsageError, outcome_code
from loaders.core.registry import SOURCE_NAMES, pipeline_name, raw_dataset
from loaders.core.settings import Settings
from loaders.ops.load import load_sources
from loaders.ops.runner import Result, dbt_build, writing
from loaders.warehouse import dialect
from loaders.warehouse.base import Dialect
from loaders.warehouse.locks import writer_lock

BATCH_ROWS = 50_000


@dataclass(frozen=True)
class MovePlan:
    source_path: Path
    tables: list[tuple[str, str, int]]  # dataset, table, rows in DuckDB

    def describe(self) -> str:
        lines = [f"elt move would copy from {self.source_path} into PostgreSQL:"]
        lines += [f"  {dataset}.{table} ({rows} rows)" for dataset, table, rows in self.tables]
        lines.append("  then drop PostgreSQL's local dlt folders and dbt build --full-refresh")
        return "\n".join(lines)


def plan(source_path: Path) -> MovePlan:
    datasets = ", ".join(f"'{raw_dataset(name)}'" for name in SOURCE_NAMES)
    with duckdb.connect(str(source_path), read_only=True) as conn:
        found = conn.execute(
            "select table_schema, table_name from information_schema.tables"
            f" where table_schema in ({datasets}) and table_name <> '_dlt_version' order by 1, 2"
        ).fetchall()
        tables = [
            (dataset, table, conn.execute(f'select count(*) from {dataset}."{table}"').fetchone()[0])
            for dataset, table in found
        ]
    return MovePlan(source_path, tables)


def copy_tables(settings: Settings, move: MovePlan) -> None:
    """Empty each table in the target and copy DuckDB's rows into it, all in one transaction."""
    warehouse = dialect(settings)
    with (
        warehouse.connect(read_only=False) as target,
        duckdb.connect(str(move.source_path), read_only=True) as source,
    ):
        source.execute("set TimeZone = 'UTC'")
        cursor = target.cursor()
        cursor.execute("begin")
        try:
            for dataset, table, _ in move.tables:
                copy_table(warehouse, source, cursor, dataset, table)
        except BaseException:
            cursor.execute("rollback")
            raise
        cursor.execute("commit")


def copy_table(warehouse: Dialect, source: Any, cursor: Any, dataset: str, table: str) -> None:
    names = warehouse.column_names(cursor, dataset, table)
    if not names:
        raise CommandFailed(f"{warehouse.name} has no table {dataset}.{table}: load the source there first")
    present = {row[0] for row in source.execute(f'describe {dataset}."{table}"').fetchall()}
    columns = [name for name in names if name in present]  # a column only the target has: NULL
    listed = ", ".join(f'"{name}"' for name in columns)
    cursor.execute(f'delete from {dataset}."{table}"')
    batches = source.execute(f'select {listed} from {dataset}."{table}"').to_arrow_reader(BATCH_ROWS)
    warehouse.copy_rows(cursor, f'{dataset}."{table}"', columns, iter(batches))


def move(settings: Settings, from_duckdb: Path, yes: bool) -> Result:
    """Carry a DuckDB deployment's landed history (raw data, dead letters, cursors, manifest) into the
    warehouse the settings point at, then rebuild every model there."""
    warehouse = dialect(settings)
    if not warehouse.accepts_moves:
        raise UsageError("set ELT_TARGET=postgres and the PG* variables of the warehouse to move into")
    move_plan = plan(from_duckdb.resolve())
    if not yes:
        return Result(ExitCode.OK, f"{move_plan.describe()}\nnothing changed: run again with --yes to do it")
    with writing(settings, "move", [str(from_duckdb)]) as run:
        load_sources(settings, list(SOURCE_NAMES), run)  # dlt creates the raw tables
        failed = [o for o in run.sources if o.error]
        if failed:
            error = "; ".join(f"{o.source}: {o.error}" for o in failed)
            run.finish(ExitCode.LOAD_FAILED, f"elt move FAILED: could not create the raw tables: {error}", error)
        else:
            with writer_lock(settings):
                copy_tables(settings, move_plan)
            for name in SOURCE_NAMES:
                shutil.rmtree(warehouse.pipelines_dir() / pipeline_name(name), ignore_errors=True)
            outcome = dbt_build(settings, run, ["build", "--full-refresh"])
            copied = sum(rows for _, _, rows in move_plan.tables)
            summary = f"elt move: copied {copied} rows from {from_duckdb}; {outcome.describe()}"
            run.finish(outcome_code([], outcome, []), summary)
    return Result(run.exit_code, f"{move_plan.describe()}\n{run.summary}")

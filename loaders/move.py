"""`elt move --from-duckdb PATH`: carry a DuckDB deployment's landed history into PostgreSQL.

Loading the same sources into a new warehouse does not give the same tables: the sources serve their
present (the orders API the last version of each order, the app database rows updated in place, a
re-delivered file instead of the one before), so the versions DuckDB landed and the sources no longer
serve cannot be landed again — and a key whose latest version is quarantined would lose its last good
version. What decides the tables is what was landed. So a move copies the landed data, then rebuilds:

1. each source is loaded once into PostgreSQL, so dlt creates its raw tables with its own types;
2. in one transaction, every table of each `raw_<source>` dataset — the data tables, `dead_letters`,
   `_dlt_loads` and `_dlt_pipeline_state` (the cursors and the payments manifest) — is emptied and
   filled with DuckDB's rows (dlt's `_dlt_version` stays PostgreSQL's own);
3. PostgreSQL's local dlt folder of each source is dropped, so dlt takes the cursors from the copied
   state on the next load;
4. `dbt build --full-refresh` builds every model from the copied raw data.

Run it with the PostgreSQL settings (`ELT_TARGET=postgres`, `PG*`) and the same source settings; the
DuckDB file is only read. Without `--yes` it prints what it would copy and changes nothing. The run
ledger is not copied: PostgreSQL's starts with the move (DuckDB's stays in its file).
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from loaders.entities import SOURCE_NAMES
from loaders.settings import Settings
from loaders.warehouse import connect

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
    import duckdb

    datasets = ", ".join(f"'raw_{name}'" for name in SOURCE_NAMES)
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
    """Empty each table in PostgreSQL and copy DuckDB's rows into it, all in one transaction."""
    import duckdb

    with connect(settings, read_only=False) as target, duckdb.connect(str(move.source_path), read_only=True) as source:
        source.execute("set TimeZone = 'UTC'")
        cursor = target.cursor()
        cursor.execute("begin")
        try:
            for dataset, table, _ in move.tables:
                copy_table(source, cursor, dataset, table)
        except BaseException:
            cursor.execute("rollback")
            raise
        cursor.execute("commit")


def copy_table(source: Any, cursor: Any, dataset: str, table: str) -> None:
    import pyarrow.csv as csv

    cursor.execute(
        "select column_name from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position",
        (dataset, table),
    )
    names = [row[0] for row in cursor.fetchall()]
    if not names:
        raise MoveFailed(f"PostgreSQL has no table {dataset}.{table}: load the source there first")
    present = {row[0] for row in source.execute(f'describe {dataset}."{table}"').fetchall()}
    listed = ", ".join(f'"{name}"' for name in names if name in present)  # a column only PostgreSQL has: NULL
    cursor.execute(f'delete from {dataset}."{table}"')
    for batch in source.execute(f'select {listed} from {dataset}."{table}"').to_arrow_reader(BATCH_ROWS):
        buffer = io.BytesIO()
        csv.write_csv(batch, buffer)  # nulls unquoted (NULL to COPY), strings quoted ('' stays '')
        buffer.seek(0)
        cursor.copy_expert(f'copy {dataset}."{table}" ({listed}) from stdin with (format csv, header)', buffer)


class MoveFailed(RuntimeError):
    """The move cannot go on; nothing in PostgreSQL changed."""


def move(
    from_duckdb: Annotated[
        Path, typer.Option("--from-duckdb", help="the DuckDB file the deployment ran on (only read)", exists=True)
    ],
    yes: Annotated[bool, typer.Option("--yes", help="do it; without it, print what it would copy and stop")] = False,
) -> int:
    """Carry a DuckDB deployment's landed history (raw data, dead letters, cursors, manifest) into the
    PostgreSQL the settings point at, then rebuild every model there."""
    from loaders.harness import USAGE_ERROR, ExitCode, ledgered, load_sources, outcome_code, record_dbt, run_dbt
    from loaders.locking import run_lock, writer_lock
    from loaders.pipelines import pipeline_name

    settings = Settings.from_env()
    if settings.target != "postgres":
        print("elt move: set ELT_TARGET=postgres and the PG* variables of the warehouse to move into")
        return USAGE_ERROR
    move_plan = plan(from_duckdb.resolve())
    print(move_plan.describe())
    if not yes:
        print("nothing changed: run again with --yes to do it")
        return int(ExitCode.OK)
    try:
        with run_lock(settings), ledgered(settings, "move", [str(from_duckdb)]) as entry:
            entry.sources = load_sources(settings, list(SOURCE_NAMES))  # dlt creates the raw tables
            failed = [o for o in entry.sources if o.error]
            if failed:
                entry.exit_code = ExitCode.LOAD_FAILED
                entry.error = "; ".join(f"{o.source}: {o.error}" for o in failed)
                entry.summary = f"elt move FAILED: could not create the raw tables: {entry.error}"
            else:
                with writer_lock(settings):
                    copy_tables(settings, move_plan)
                for name in SOURCE_NAMES:
                    shutil.rmtree(settings.pipelines_dir() / pipeline_name(name), ignore_errors=True)
                outcome = run_dbt(settings, ["build", "--full-refresh"])
                record_dbt(entry, outcome)
                entry.exit_code = outcome_code([], outcome, [])
                copied = sum(rows for _, _, rows in move_plan.tables)
                entry.summary = f"elt move: copied {copied} rows from {from_duckdb}; {outcome.describe()}"
    except MoveFailed as exc:
        print(f"elt move FAILED: {exc}")
        return int(ExitCode.LOAD_FAILED)
    print(entry.summary)
    return int(entry.exit_code)

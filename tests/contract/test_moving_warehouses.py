"""Moving warehouses: PostgreSQL after DuckDB gives the same canonical tables, row for row.

A deployment runs on DuckDB for several simulated days (late versions, invalid, damaged and late records,
late dimensions, re-delivered and late files), one `elt run` a day. Every canonical table must then hold
the same rows on PostgreSQL, every column, and the open quarantine rows the same keys, versions, reason
codes and records; the two targets' dlt working folders stay apart.

Two tests, each about both warehouses at once, so each runs once (not once per warehouse):
- the same days on both warehouses (each day's run on DuckDB, then on PostgreSQL): what the two targets
  make of the same landed data is the same;
- the move itself: DuckDB has run for days, then `elt move --from-duckdb` carries its landed history into
  PostgreSQL. Reading the sources again would not do: they serve their present, not their past (the
  orders API serves the last version of each order, app_db rows are updated in place, a re-delivered file
  replaces the one before), so a key whose latest version is quarantined would lose its last good version.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from loaders.core.settings import Settings
from loaders.simulate import generate
from loaders.warehouse import dialect, fetch_all
from tests.conftest import _fresh_postgres
from tests.contract.test_story import STORY
from tests.support.cli import elt
from tests.support.project import CANONICAL_KEYS, QUARANTINE_KEYS, Project, Warehouse
from tests.support.runbook import Runbook

MOVE = "Move from DuckDB to PostgreSQL"  # docs/runbook.md

# the story test's messy world (every kind of bad and late input), another seed and volume
HISTORY = STORY.model_copy(update={"seed": 3, "orders_per_day": 25})
DAYS = 4

# Of a quarantine row, what the contract fixes: its key, its version and its reasons (and the landed record).
# Left out as load-time audit columns, which legitimately differ between two loads of the same data:
# loaded_at (when dlt landed the version), first_seen_at / last_seen_at / resolved_at (when a build saw
# it), and resolved rows as a whole (history, outside the promise; a warehouse loaded once has none).
# The canonical tables have no audit column: every column of theirs is compared.
QUARANTINE_COLUMNS = ("version_key", "version_at", "failed_rules", "record")

# every version each source's loader landed (natural key, version column), dead letters apart
RAW_VERSIONS = (
    "raw_app_db.customers",
    "raw_app_db.products",
    "raw_shop_api.orders",
    "raw_payments_files.payments",
)

TableRows = dict[tuple[Any, ...], tuple[Any, ...]]

# a fresh, empty PostgreSQL database on the session's server, as every PostgreSQL test gets one
postgres_database = contextlib.contextmanager(_fresh_postgres)


def comparable(value: Any) -> Any:
    """One value as both warehouses must agree on it. Only timestamps are normalized: DuckDB and psycopg2
    both give aware datetimes, in the session's time zone, so they compare as UTC instants. Money stays
    Decimal (numeric(18,2) on both: a float would be a broken contract and compare unequal), booleans,
    dates, integers and text stay as the driver gives them."""
    if isinstance(value, datetime):
        assert value.tzinfo is not None, f"a naive timestamp {value!r}: contract 2.1 says UTC instants"
        return value.astimezone(UTC)
    assert not isinstance(value, float), f"a float {value!r}: money is numeric(18,2), never a float"
    assert value is None or isinstance(value, str | int | bool | Decimal | date), type(value)
    return value


def columns(settings: Settings, schema: str, table: str) -> list[str]:
    rows = fetch_all(
        settings,
        "select column_name from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position",
    )
    return [row[0] for row in rows]


def canonical_table(settings: Settings, table: str) -> tuple[list[str], TableRows]:
    """The table's columns and its rows by key, every column of them."""
    names, keys = columns(settings, "analytics", table), CANONICAL_KEYS[table]
    rows = fetch_all(settings, f"select * from analytics.{table}")
    by_key = {tuple(row[names.index(k)] for k in keys): tuple(comparable(v) for v in row) for row in rows}
    assert len(by_key) == len(rows), f"analytics.{table} repeats a key"
    return names, by_key


def open_quarantine(settings: Settings, table: str) -> TableRows:
    key = QUARANTINE_KEYS[table]
    rows = fetch_all(
        settings, f"select {key}, {', '.join(QUARANTINE_COLUMNS)} from quarantine.{table} where not is_resolved"
    )
    # the record is the landed row as JSON text: compared as JSON, since each warehouse spells JSON its own way
    by_key = {row[0]: (*row[1:-1], json.loads(row[-1])) for row in rows}
    assert len(by_key) == len(rows), f"more than one open quarantine row for a key in quarantine.{table}"
    return by_key


def warehouse_tables(settings: Settings) -> dict[str, Any]:
    tables: dict[str, Any] = {f"analytics.{t}": canonical_table(settings, t) for t in CANONICAL_KEYS}
    tables.update({f"quarantine.{t}": open_quarantine(settings, t) for t in QUARANTINE_KEYS})
    return tables


def differences(before: TableRows, after: TableRows) -> str:
    """The keys whose rows differ, a few of them each way, for a failure that says what moved."""
    lines = []
    for key in sorted(before.keys() | after.keys(), key=repr):
        if before.get(key) != after.get(key):
            lines.append(f"  {key}: duckdb {before.get(key)} / postgres {after.get(key)}")
    return "\n".join([f"{len(lines)} keys differ:", *lines[:8]])


def folder_listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@contextlib.contextmanager
def duckdb_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """The sample sources and a DuckDB warehouse, the process's environment pointed at both."""
    duckdb = Warehouse("duckdb", {"ELT_TARGET": "duckdb", "ELT_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")})
    with Project.started(duckdb, tmp_path, monkeypatch) as project:
        yield project


def elt_run(env: dict[str, str] | None = None, when: str = "") -> None:
    run = elt("run", env=env)
    assert run.returncode == 0, f"{when}: {run.stdout}{run.stderr[-3000:]}"


def assert_same_tables(on_duckdb: dict[str, Any], on_postgres: dict[str, Any]) -> None:
    for relation, rows in on_duckdb.items():
        assert rows, f"{relation} is empty on DuckDB: the history proves nothing about it"
        if relation.startswith("analytics."):
            (names, duckdb_rows), (postgres_names, postgres_rows) = rows, on_postgres[relation]
            assert postgres_names == names, relation
        else:
            duckdb_rows, postgres_rows = rows, on_postgres[relation]
        assert postgres_rows == duckdb_rows, f"{relation}: {differences(duckdb_rows, postgres_rows)}"


def assert_working_folders_apart(on_duckdb: Settings, on_postgres: Settings) -> None:
    """The same ELT_STATE_DIR, two dlt working folders: neither target sees the other's pending packages,
    state or manifest."""
    duckdb_folder, postgres_folder = dialect(on_duckdb).pipelines_dir(), dialect(on_postgres).pipelines_dir()
    assert duckdb_folder != postgres_folder
    assert duckdb_folder not in postgres_folder.parents and postgres_folder not in duckdb_folder.parents
    assert folder_listing(duckdb_folder) and folder_listing(postgres_folder)


@pytest.mark.long
def test_the_same_days_give_the_same_tables_on_duckdb_and_postgresql(
    postgres_server: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both warehouses fed the same sources day by day (each day's `elt run` on DuckDB, then on PostgreSQL,
    with the same ELT_STATE_DIR): what the warehouses make of the same landed data is the same, late
    versions, late and re-delivered files and late dimensions included."""
    with duckdb_deployment(tmp_path, monkeypatch) as project, postgres_database(postgres_server) as postgres:
        for day in range(1, DAYS + 1):
            story = generate(project.root, HISTORY, through_day=day)
            elt_run(when=f"day {day} on DuckDB")
            elt_run(postgres.env, when=f"day {day} on PostgreSQL")
        assert story.late_versions and story.late_files and story.redelivered_files and story.invalid_records
        assert story.damaged_rows
        on_duckdb, on_postgres = Settings.from_env(), Settings.from_env({**os.environ, **postgres.env})
        assert_working_folders_apart(on_duckdb, on_postgres)
        assert_same_tables(warehouse_tables(on_duckdb), warehouse_tables(on_postgres))


def test_loading_the_same_sources_into_postgresql_after_duckdb_gives_the_same_tables(
    postgres_server: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runbook: Runbook
) -> None:
    """The move: DuckDB has run for days; `elt move` copies its landed history into PostgreSQL and builds."""
    with duckdb_deployment(tmp_path, monkeypatch) as project, postgres_database(postgres_server) as postgres:
        for day in range(1, DAYS + 1):
            generate(project.root, HISTORY, through_day=day)
            elt_run(when=f"day {day} on DuckDB")
        on_duckdb = Settings.from_env()
        duckdb_files = folder_listing(dialect(on_duckdb).pipelines_dir())

        # The runbook's procedure, as written, from the DuckDB file's folder: the same source settings and
        # ELT_STATE_DIR, only the warehouse variables change. The sources serve their present only, so the
        # history DuckDB landed is carried over, not read again.
        folder = on_duckdb.duckdb_path.parent
        runbook.run(MOVE, folder, postgres.env)  # elt grants
        dry = runbook.run(MOVE, folder, postgres.env)
        assert "nothing changed" in dry.stdout, dry.stdout
        assert (
            fetch_all(
                Settings.from_env({**os.environ, **postgres.env}),
                "select count(*) from pg_namespace where nspname like 'raw_%'",
            )[0][0]
            == 0
        )
        runbook.run(MOVE, folder, postgres.env)
        on_postgres = Settings.from_env({**os.environ, **postgres.env})
        moved = warehouse_tables(on_postgres)
        assert folder_listing(dialect(on_duckdb).pipelines_dir()) == duckdb_files, "the move touched DuckDB's folder"
        runbook.run(MOVE, folder, postgres.env)  # the next `elt run`, from the copied cursors: it changes nothing
        assert warehouse_tables(on_postgres) == moved
        assert_working_folders_apart(on_duckdb, on_postgres)

        # What is landed decides the tables (contract 2.1): the same versions must be there on both.
        for raw in RAW_VERSIONS:
            landed = [fetch_all(settings, f"select count(*) from {raw}")[0][0] for settings in (on_duckdb, on_postgres)]
            assert landed[1] == landed[0], f"{raw}: DuckDB landed {landed[0]} versions, PostgreSQL {landed[1]}"
        assert_same_tables(warehouse_tables(on_duckdb), moved)

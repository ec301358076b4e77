"""The bench's warehouses: a fresh one per target and run, SQL through the project's own dialect, and what
a local PostgreSQL server shows of its work (its postmaster, for CPU; a log of the slow statements).

Invariant: the bench reaches a warehouse only as the harness does (`loaders.warehouse.dialect(settings)`),
and every warehouse it makes is its own, dropped afterwards unless kept (`--keep`).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import log
from loaders.core.registry import raw_dataset
from loaders.core.settings import Settings
from loaders.warehouse import dialect
from loaders.warehouse.base import Dialect

PG_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
# Before every timed build: what autovacuum does between two scheduled runs, or DuckDB's checkpoint.
STEADY_STATE = {"postgres": "vacuum analyze", "duckdb": "checkpoint"}
STATEMENT_MIN_MS = 250


# -- a fresh warehouse ---------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_server() -> Iterator[dict[str, str]]:
    """The PG* of the server to use: the environment's, or a throwaway server's, started for the block."""
    if os.environ.get("PGHOST"):
        yield {name: os.environ[name] for name in PG_VARIABLES if name in os.environ}
        return
    from tests.support.postgres import throwaway_postgres

    log("no PGHOST: starting a throwaway PostgreSQL server")
    with throwaway_postgres() as server:
        yield server


@contextlib.contextmanager
def fresh_warehouse(target: str, folder: Path, keep: bool) -> Iterator[dict[str, str]]:
    """The environment of a fresh warehouse: ELT_* and, for PostgreSQL, the PG* of a fresh database."""
    if target == "duckdb":
        yield {"ELT_TARGET": "duckdb", "ELT_DUCKDB_PATH": str(folder / "warehouse.duckdb")}
        return
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(postgres_server())
        maintenance = {**server, "PGDATABASE": server.get("PGDATABASE", "postgres"), "ELT_TARGET": "postgres"}
        admin = stack.enter_context(dialect(Settings.from_env(maintenance)).connect(read_only=False)).cursor()
        name = f"elt_bench_{uuid.uuid4().hex[:10]}"
        admin.execute(f'create database "{name}"')
        log(f"PostgreSQL database {name} on {server['PGHOST']}:{server.get('PGPORT', '5432')}")
        try:
            yield {**server, "PGDATABASE": name, "ELT_TARGET": "postgres"}
        finally:
            if not keep:
                admin.execute(f'drop database if exists "{name}" with (force)')


# -- SQL -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def cursor(settings: Settings, read_only: bool = False) -> Iterator[Any]:
    warehouse = dialect(settings)
    with warehouse.connect(read_only=read_only) as conn:
        cur = conn.cursor()
        if warehouse.name == "postgres" and not read_only:
            cur.execute("set work_mem = '256MB'")  # the bulk inserts' sorts; reads keep the server's defaults
        yield cur


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    return dialect(settings).fetch_all(sql)


def scalar(settings: Settings, sql: str) -> Any:
    return rows(settings, sql)[0][0]


def steady_state(settings: Settings) -> None:
    warehouse = dialect(settings)
    with warehouse.connect(read_only=False) as conn:
        conn.cursor().execute(STEADY_STATE[warehouse.name])


def after_loads(settings: Settings, sources: tuple[str, ...]) -> str:
    """What the harness does after each load of these sources (`Dialect.after_load`: on PostgreSQL the raw
    indexes and fresh planner statistics); says what ran."""
    from loaders.landing.pipelines import pipeline

    warehouse = dialect(settings)
    if type(warehouse).after_load is Dialect.after_load:
        return f"none ({type(warehouse).__name__})"
    for source in sources:
        warehouse.after_load(raw_dataset(source), pipeline(settings, source).default_schema)
    return f"{type(warehouse).__module__}.{type(warehouse).__name__}.after_load"


# -- what a local PostgreSQL server shows --------------------------------------------------------------


def postmaster(settings: Settings) -> int | None:
    """The local server's postmaster (its exited backends' CPU accrues to it), or None if not readable:
    from its data directory's postmaster.pid, else as the parent of this session's backend (when that pid
    is a local `postgres` process)."""
    with contextlib.suppress(Exception):
        data_dir = scalar(settings, "show data_directory")
        return int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    try:
        backend = int(scalar(settings, "select pg_backend_pid()"))
        time.sleep(0.2)
        proc = Path(f"/proc/{backend}")
        if not (proc / "comm").read_text().startswith("postgres"):
            return None
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except Exception:  # not local, or the backend is gone already
        return None


def enable_statement_log(settings: Settings) -> Path | None:
    """Log every statement of this database slower than STATEMENT_MIN_MS, when the server's log is a local
    file this process can read (the throwaway server's); returns that file."""
    try:
        data_dir = Path(scalar(settings, "show data_directory"))
        log_file = data_dir.parent / "server.log"  # where tests.support.postgres starts the server's log
        if not log_file.is_file():
            return None
        with cursor(settings) as cur:
            cur.execute("select current_database()")
            database = cur.fetchone()[0]
            cur.execute(f'alter database "{database}" set log_min_duration_statement = {STATEMENT_MIN_MS}')
        return log_file
    except Exception as exc:
        log(f"no statement log: {exc}")
        return None


def slow_statements(log_file: Path, offset: int) -> list[tuple[str, str, float]]:
    """(dbt node, statement kind, seconds) of the logged statements since `offset`, slowest first."""
    with open(log_file, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    entries = re.split(r"\n(?=\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", text)
    found = []
    for entry in entries:
        match = re.search(r"duration: ([0-9.]+) ms\s+(?:statement|execute [^:]*): (.*)", entry, re.S)
        if not match:
            continue
        seconds, sql = float(match.group(1)) / 1000, match.group(2)
        node = re.search(r'"node_id": "([^"]+)"', sql)
        body = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
        lock = "pg_advisory_xact_lock" in body
        what = "writer lock wait" if lock else " ".join(body.split()[:4]).lower()[:60]
        found.append((node.group(1).split(".")[-1] if node else "?", what, round(seconds, 2)))
    return sorted(found, key=lambda entry: -entry[2])

"""Readers never see a hole (PostgreSQL): a reader counting the rows of every canonical table in its own
connection, every ~20 ms, while `dbt build --full-refresh` rebuilds them, never finds a table missing,
empty, half-filled or failing.

How it holds: dbt's incremental materialization, on a full refresh, builds the new table as
`<name>__dbt_tmp` — with the model contract enforced, `create table` with the declared columns, then
`insert` — and, in the same transaction, renames the old table to `__dbt_backup` and the new one to its
name, grants the reader (dbt's `grants` config), runs the post-hooks and commits; the backup is dropped
after the commit. A reader's statement that meets the renames waits for their lock and then reads the new
table (PostgreSQL resolves the name again after waiting on a relation that changed), so every read sees
the old table whole or the new one whole. The test proves it happened under the reader's eyes: each table
was replaced (the reader saw both the old and the new relation) and many reads overlapped the build.

DuckDB is not tested here: its database file admits no other process while dbt writes it (a reader's
connection fails with DuckDB's lock error, it never sees a partial table), and in one process DuckDB's
own transactions give the same all-or-nothing.

The second test replays dbt's swap by hand with a read issued between the renames and the commit: it
waits, then reads the new table. The third proves the reader would notice a hole: it reads through a
non-atomic replacement (drop, then create) and a non-atomic refill (truncate, then insert) and sees the
error and the empty table.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg2
import pytest

from loaders.simulate import SimulationConfig, generate
from tests.support.project import Project, Warehouse
from tests.support.readers import ReaderLoop, connect_kwargs

WORLD = SimulationConfig(seed=31, customers=40, orders_per_day=80, invalid_rate=0.1)
CANONICAL_TABLES = [
    f"analytics.{name}" for name in ("customers", "products", "orders", "order_items", "payments", "daily_revenue")
]
MIN_READS_DURING_BUILD = 50  # of each table; a full refresh takes seconds, a read every ~20 ms

postgres_only = pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)


def relation_oids(project: Project) -> dict[str, int]:
    return {table: int(project.scalar(f"select '{table}'::regclass::oid::bigint")) for table in CANONICAL_TABLES}


@postgres_only
def test_a_reader_never_sees_a_hole_during_a_full_refresh(project: Project) -> None:
    generate(project.root, WORLD, through_day=2)
    project.run()
    rows_before = {table: project.scalar(f"select count(*) from {table}") for table in CANONICAL_TABLES}
    assert all(rows_before.values()), rows_before
    oids_before = relation_oids(project)

    with ReaderLoop(connect_kwargs(project.settings), CANONICAL_TABLES) as reader:
        time.sleep(0.3)  # some reads of the old tables
        started = time.time()
        project.build("--full-refresh")
        finished = time.time()
        time.sleep(0.3)  # and of the new ones

    oids_after = relation_oids(project)
    assert reader.failed() == [], reader.failed()[:5]
    assert reader.empty() == [], reader.empty()[:5]
    for table in CANONICAL_TABLES:
        reads = reader.of(table)
        # never a half-filled table: a full refresh leaves exactly the rows the incremental runs left
        assert {read.rows for read in reads} == {rows_before[table]}, table
        # the table was replaced while it was being read: the old relation first, the new one last
        assert oids_after[table] != oids_before[table], table
        assert reads[0].relation == oids_before[table], table
        assert reads[-1].relation == oids_after[table], table
        assert {read.relation for read in reads} == {oids_before[table], oids_after[table]}, table
        during = reader.during(table, started, finished)
        assert len(during) >= MIN_READS_DURING_BUILD, (table, len(during), finished - started)


def reader_connection(warehouse: Warehouse) -> dict[str, str]:
    env = warehouse.env
    return {
        "host": env["PGHOST"],
        "port": env.get("PGPORT", "5432"),
        "user": env.get("PGUSER", ""),
        "password": env.get("PGPASSWORD", ""),
        "dbname": env["PGDATABASE"],
    }


def admin_connection(warehouse: Warehouse, autocommit: bool = True) -> Any:
    conn = psycopg2.connect(**reader_connection(warehouse))
    conn.autocommit = autocommit
    return conn


@postgres_only
def test_a_read_that_meets_the_swap_waits_and_reads_the_new_table(warehouse: Warehouse) -> None:
    """The mechanism, step by step as dbt takes it: a read issued after the renames and before the commit
    waits for the swap's lock, then reads the new table whole — never the missing name, never the old
    table that is about to be dropped."""
    admin = admin_connection(warehouse)
    admin.cursor().execute(
        "create schema analytics; create table analytics.orders as select generate_series(1, 100) as id"
    )
    swap = admin_connection(warehouse, autocommit=False)
    cursor = swap.cursor()
    cursor.execute("create table analytics.orders__dbt_tmp as select generate_series(1, 200) as id")
    cursor.execute("alter table analytics.orders rename to orders__dbt_backup")
    cursor.execute("alter table analytics.orders__dbt_tmp rename to orders")
    result: dict[str, object] = {}

    def read() -> None:
        conn = psycopg2.connect(**reader_connection(warehouse), application_name="mid-swap-reader")
        conn.autocommit = True
        try:
            reading = conn.cursor()
            reading.execute("select count(*) from analytics.orders")
            result["rows"] = reading.fetchone()[0]
        except psycopg2.Error as exc:
            result["error"] = exc.pgerror
        finally:
            conn.close()

    waiting = (
        "select count(*) from pg_stat_activity where application_name = 'mid-swap-reader' and wait_event_type = 'Lock'"
    )
    reader = threading.Thread(target=read)
    try:
        reader.start()
        watching = admin.cursor()
        deadline = time.monotonic() + 30
        blocked = 0
        while not blocked and time.monotonic() < deadline:
            watching.execute(waiting)
            blocked = watching.fetchone()[0]
            time.sleep(0.01)
        assert blocked, "the read did not wait for the swap"
        swap.commit()
        reader.join(timeout=30)
    finally:
        swap.close()
        admin.close()
    assert result == {"rows": 200}


@postgres_only
def test_the_reader_notices_a_hole_when_there_is_one(warehouse: Warehouse) -> None:
    """The detector itself: a replacement that is not atomic shows up as an error, a refill as an empty
    table — what the first test would report if the materialization ever stopped swapping in one
    transaction."""
    admin = admin_connection(warehouse)
    cursor = admin.cursor()
    cursor.execute("create schema analytics; create table analytics.orders as select generate_series(1, 100) as id")
    try:
        with ReaderLoop(reader_connection(warehouse), ["analytics.orders"]) as reader:
            time.sleep(0.2)
            cursor.execute("drop table analytics.orders")
            time.sleep(0.3)
            cursor.execute("create table analytics.orders as select generate_series(1, 100) as id")
            time.sleep(0.2)
            cursor.execute("truncate analytics.orders")
            time.sleep(0.3)
            cursor.execute("insert into analytics.orders select generate_series(1, 100)")
            time.sleep(0.2)
    finally:
        admin.close()
    assert any("does not exist" in (read.error or "") for read in reader.failed()), reader.reads[:5]
    assert reader.empty(), "the reader missed the empty table"
    assert reader.reads[-1].rows == 100

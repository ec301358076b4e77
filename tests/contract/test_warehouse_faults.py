"""Faults at the warehouse: while `elt run` loads, the loader's PostgreSQL connection is killed, a statement
hits the database's `statement_timeout`, the disk is full, or a constraint rejects the rows. The run fails
clearly — exit code 1 and a summary naming the source and the server's reason — with the other sources
loaded and dbt built on what landed; the next run, the fault gone, repairs everything: the canonical and
open quarantine tables, raw and the dead letters equal those of a warehouse that ran the same days
uninterrupted, and every version the sources serve is in raw (rows lost = 0). No cursor moves past data
that did not commit: the faulted run completes no load of the source (dlt restores a cursor only from the
state of a completed load) and leaves its raw rows unchanged, and the repair run resumes the package the
fault left behind.

PostgreSQL only: DuckDB runs inside the loader's process — there is no connection to kill, no server
setting to time out a statement, no server-side trigger or constraint to stand in for a full disk (its own
write errors are the process's, covered by the kill tests).

Each fault lasts exactly while the loaders run (it is lifted before dbt starts) and hits the orders API's
raw tables (`raw_shop_api`), on day 2 of a world larger than the default:

- connection killed: a thread terminates (`pg_terminate_backend`) the backends it finds in
  `pg_stat_activity` writing those tables (the staging COPY or the merge into raw, by query text). Once:
  dlt retries a job whose connection failed (a transient error, up to 5 attempts) and the run succeeds.
  Every time: the run fails.
- statement timeout: `ALTER DATABASE ... SET statement_timeout = '200ms'` for every new session;
- disk full: a trigger failing every insert into the raw orders table with PostgreSQL's disk-full error;
- rows rejected: a `CHECK (false) NOT VALID` constraint on it, a terminal error to dlt (never retried).

For the first two the raw orders table is also held by a SHARE lock — the lock a DBA's plain `CREATE
INDEX` takes — so the merge into it waits in plain sight, however fast the machine: the killer always
finds it and the timeout always fires.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2
import pytest

import loaders.ops.run as harness
from loaders.core.outcomes import ExitCode
from loaders.simulate import SimulationConfig, generate
from tests.conftest import _fresh_postgres
from tests.contract.test_catch_up import raw_contents
from tests.contract.test_random_kills import RAW, served_versions
from tests.support.project import Project

# Larger than the default world, so the loads' COPY and merge statements take a while on their own too.
# No damaged records: every version a source serves must then be in raw (invalid ones land, quarantined).
WORLD = SimulationConfig(seed=11, customers=120, orders_per_day=800, damaged_rate=0.0)
DAYS = (1, 2)  # day 1 runs cleanly; the fault hits day 2's loads
RAW_ORDERS = "raw_shop_api.orders"
# What the loader sends to write the orders API's data: the staging COPY, the merge into raw.
LOADER_WRITES = (
    "(query like 'COPY \"raw_shop_api_staging\".%' or query like 'DELETE FROM \"raw_shop_api\".%'"
    " or query like 'INSERT INTO \"raw_shop_api\".%')"
)


@dataclass(frozen=True)
class Tables:
    snapshot: dict[str, Any]
    raw: dict[str, list[tuple[Any, ...]]]
    dead_letters: list[tuple[Any, ...]]


def tables(project: Project) -> Tables:
    return Tables(
        project.snapshot(),
        raw_contents(project),
        project.query("select source, dead_letter_id from ops.dead_letters order by 1, 2"),
    )


@pytest.fixture(scope="module")
def uninterrupted(postgres_server, tmp_path_factory) -> Tables:
    """The same days run with no fault, once for every scenario (the world is deterministic)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    with contextlib.ExitStack() as stack:
        warehouse = stack.enter_context(contextlib.contextmanager(_fresh_postgres)(postgres_server))
        monkeypatch = stack.enter_context(pytest.MonkeyPatch.context())
        reference = stack.enter_context(Project.started(warehouse, folder, monkeypatch, name="reference"))
        for day in DAYS:
            advance(reference, day)
            code, line = reference.elt_run()
            assert code == ExitCode.OK, line
        expected = tables(reference)
    assert len(expected.dead_letters) == 2, expected.dead_letters
    return expected


# -- the faults ---------------------------------------------------------------------------------------------


def admin(project: Project) -> Any:
    pg = project.settings.postgres
    conn = psycopg2.connect(
        host=pg.host, port=pg.port, user=pg.user, password=pg.password.get_secret_value(), dbname=pg.dbname
    )
    conn.autocommit = True
    return conn


def advance(project: Project, day: int) -> None:
    """The world as of `day`; on day 2 the API also serves two records no loader can land (dead letters,
    which land in the same package as the orders)."""
    generate(project.root, WORLD, through_day=day)
    if day == 2:
        project.api_store.add_many([{"status": "paid", "updated_at": "2024-03-02T12:00:00Z"}, '["not an order"]'])


@contextlib.contextmanager
def raw_orders_held(project: Project) -> Iterator[Callable[[], None]]:
    """A transaction holding RAW_ORDERS in SHARE mode (as a plain CREATE INDEX does): the loader's merge
    into it waits. Yields `release`."""
    holder = admin(project)
    holder.autocommit = False
    holder.cursor().execute(f"lock table {RAW_ORDERS} in share mode")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            holder.rollback()
            holder.close()
            released = True

    try:
        yield release
    finally:
        release()


@contextlib.contextmanager
def connections_killed(project: Project, every: bool, injected: Counter[str]) -> Iterator[None]:
    """A thread terminates the backends writing the orders API's raw tables: those it first sees
    (`every=False`: then the table is released, dlt's retry goes through) or every one until the loads end."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def kill(release: Callable[[], None]) -> None:
        try:
            with contextlib.closing(admin(project)) as conn:
                cursor = conn.cursor()
                while not stop.is_set():
                    cursor.execute(
                        "select split_part(query, ' ', 1), pg_terminate_backend(pid) from pg_stat_activity"
                        f" where datname = current_database() and pid <> pg_backend_pid() and state = 'active'"
                        f" and {LOADER_WRITES}"
                    )
                    killed = [statement for statement, done in cursor.fetchall() if done]
                    injected.update(f"connection killed during {statement}" for statement in killed)
                    if killed and not every:
                        release()
                        return
                    stop.wait(0.002)
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            failures.append(exc)

    with raw_orders_held(project) as release:
        killer = threading.Thread(target=kill, args=(release,), daemon=True)
        killer.start()
        try:
            yield
        finally:
            stop.set()
            killer.join(timeout=30)
    assert not failures, failures


@contextlib.contextmanager
def statement_timeout(project: Project, injected: Counter[str]) -> Iterator[None]:
    """`ALTER DATABASE ... SET statement_timeout = '200ms'` (new sessions: every loader connection), with
    the raw orders table held so the merge outlasts it. 200 ms, not less: the loads' other statements
    (COPYs of ~1 000 rows) stay well under it on a busy 2-core machine, so the fault is the timeout of the
    one statement that waits, not a race."""
    with contextlib.closing(admin(project)) as conn, raw_orders_held(project):
        database = project.settings.postgres.dbname
        conn.cursor().execute(f"alter database \"{database}\" set statement_timeout = '200ms'")
        injected["statement_timeout 200ms"] += 1
        try:
            yield
        finally:
            conn.cursor().execute(f'alter database "{database}" reset statement_timeout')


@contextlib.contextmanager
def disk_full(project: Project, injected: Counter[str]) -> Iterator[None]:
    """A trigger that fails every insert into the raw orders table with PostgreSQL's own disk-full error
    (SQLSTATE 53100 and its wording), as a full tablespace would."""
    with contextlib.closing(admin(project)) as conn:
        cursor = conn.cursor()
        cursor.execute(
            """
            create function public.elt_test_disk_full() returns trigger language plpgsql as $$
            begin
                raise exception 'could not extend file "base/16384/24576": No space left on device'
                    using errcode = 'disk_full', hint = 'Check free disk space.';
            end $$
            """
        )
        cursor.execute(
            f"create trigger elt_test_disk_full before insert on {RAW_ORDERS}"
            " for each statement execute function public.elt_test_disk_full()"
        )
        injected["disk full on insert"] += 1
        try:
            yield
        finally:
            cursor.execute(f"drop trigger elt_test_disk_full on {RAW_ORDERS}")
            cursor.execute("drop function public.elt_test_disk_full()")


@contextlib.contextmanager
def rows_rejected(project: Project, injected: Counter[str]) -> Iterator[None]:
    """A CHECK constraint no new row passes (`NOT VALID`: the rows already there are not checked): a
    terminal error to dlt (no retry), unlike the transient ones above."""
    with contextlib.closing(admin(project)) as conn:
        cursor = conn.cursor()
        cursor.execute(f"alter table {RAW_ORDERS} add constraint elt_test_rejects check (false) not valid")
        injected["check constraint rejecting inserts"] += 1
        try:
            yield
        finally:
            cursor.execute(f"alter table {RAW_ORDERS} drop constraint elt_test_rejects")


@dataclass(frozen=True)
class Fault:
    inject: Callable[[Project, Counter[str]], contextlib.AbstractContextManager[None]]
    fails: bool  # does the run fail (or does dlt's retry absorb it)
    reason: str  # a pattern of the summary's message for the source


FAULTS = {
    "connection_dropped_once": Fault(lambda p, c: connections_killed(p, every=False, injected=c), False, ""),
    "connection_killed": Fault(
        lambda p, c: connections_killed(p, every=True, injected=c),
        True,
        r"server closed the connection|connection already closed|terminating connection",
    ),
    "statement_timeout": Fault(statement_timeout, True, r"QueryCanceled: canceling statement due to statement timeout"),
    "rows_rejected": Fault(rows_rejected, True, r"CheckViolation: new row .* violates check constraint"),
    "disk_full": Fault(disk_full, True, r"DiskFull: could not extend file .*: No space left on device"),
}


# -- the test -----------------------------------------------------------------------------------------------


def orders_loads(project: Project) -> tuple[int, set[tuple[str, str]]]:
    """The orders API's completed loads and its raw (key, version) pairs."""
    loads = project.scalar("select count(*) from raw_shop_api._dlt_loads where status = 0")
    return loads, set(project.query(f"select id, _version from {RAW_ORDERS}"))


# make test: a connection lost for good and one dropped once; the server's own refusals (a timeout, a full
# disk, a rejected row) take the same path through the loader and run in make test-matrix (`long`)
SERVER_REFUSALS = ("statement_timeout", "disk_full", "rows_rejected")


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
@pytest.mark.parametrize(
    "kind", [pytest.param(kind, marks=pytest.mark.long) if kind in SERVER_REFUSALS else kind for kind in FAULTS]
)
def test_a_warehouse_fault_fails_the_run_clearly_and_the_next_run_repairs_it(
    project: Project, uninterrupted: Tables, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = FAULTS[kind]
    advance(project, DAYS[0])
    code, line = project.elt_run()
    assert code == ExitCode.OK, line

    advance(project, DAYS[1])
    before = orders_loads(project)
    injected: Counter[str] = Counter()
    load_sources = harness.load_sources

    def loads_under_fault(settings: Any, sources: list[str], run: Any = None) -> Any:
        with fault.inject(project, injected):
            return load_sources(settings, sources, run)

    monkeypatch.setattr(harness, "load_sources", loads_under_fault)
    code, line = project.elt_run()
    monkeypatch.setattr(harness, "load_sources", load_sources)
    assert injected, f"{kind}: no fault was injected"

    if fault.fails:
        assert code == ExitCode.LOAD_FAILED, line
        assert re.search(rf"shop_api FAILED \([^;]*(?:{fault.reason})[^;]*\);", line), line
        for other in ("app_db", "payments_files"):  # the other sources still loaded
            assert re.search(rf"{other} extracted=[1-9]\d* landed=", line), line
        assert re.search(r"models built=[1-9]\d* failed=0;", line), line  # and dbt built on what landed
        # nothing of the orders committed: no completed load (so no cursor moved), raw unchanged
        assert orders_loads(project) == before, f"{kind}: the failed orders load committed something"

        code, line = project.elt_run()  # the fault is gone
        assert code == ExitCode.OK, line
        assert re.search(r"shop_api extracted=\d+ landed=\d+ unchanged=\d+ dead_lettered=\d+ resumed=1;", line), line
    else:
        assert code == ExitCode.OK, line

    lost = 0
    for table, versions in served_versions(project.root).items():
        landed = set(project.query(f"select {RAW[table]}, _version from {table}"))
        lost += len(versions - landed)
        assert versions <= landed, f"{kind}: {table} misses {sorted(versions - landed)[:5]}"
    repaired = tables(project)
    assert repaired.raw == uninterrupted.raw
    assert repaired.dead_letters == uninterrupted.dead_letters
    assert repaired.snapshot == uninterrupted.snapshot
    print(f"\nwarehouse fault[{kind}]: injected={dict(injected)} run failed={fault.fails} rows lost={lost}")

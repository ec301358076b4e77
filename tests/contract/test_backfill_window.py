"""`elt backfill SOURCE --start T1 --end T2`, on both warehouses: versions a source re-sends inside a past
window, later than its cursor's lag (or the payments manifest) can see, are landed by a backfill and reach
the canonical tables, while the source's own cursor stays where it was; a second identical backfill changes
nothing; `--chunk 1d` over three days is three chunks, a chunk that fails is reported (exit 1) and
`--resume` lands it alone; `--parallel 2` lands what a sequential backfill lands; a package a killed
backfill left is loaded first, though the source no longer serves what it holds.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from loaders.core.outcomes import ExitCode, UsageError
from loaders.core.registry import backfill_schema_name
from loaders.landing.pipelines import backfill_pipeline, cursor_positions
from loaders.ops.backfill import split_window, validate
from loaders.simulate import FaultPlan
from loaders.sources import spec
from tests.contract.records import customer, delivered, order, payment
from tests.support.cli import elt
from tests.support.project import Project
from tests.support.runbook import Runbook

pytestmark = pytest.mark.warehouses("postgres")

WINDOW = ("--start", "2024-03-01", "--end", "2024-03-04")  # three whole UTC days; --end excluded
BACKFILL = "Backfill a window a source re-sent"  # docs/runbook.md: the same window, by days


def backfill(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return elt("backfill", *args, env=env)


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr[-3000:]


def chunks(project: Project) -> list[tuple[str, str]]:
    """(chunk start as text, status) of every recorded chunk, oldest backfill first."""
    rows = project.query("select chunk_start, status from ops.elt_backfill_chunks order by requested_at, chunk_start")
    return [(start.astimezone(UTC).strftime("%Y-%m-%d"), status) for start, status in rows]


def raw_rows(project: Project, table: str, key: str) -> set[tuple[str, ...]]:
    """Raw versions as landed, without what differs between two landings of the same one."""
    return set(project.query(f"select {key}, _version, _record from {table}"))


def test_backfill_lands_a_late_window_in_chunks_resumes_a_failed_one_and_leaves_the_cursor(
    project: Project, runbook: Runbook
) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1", updated_at="2024-03-01T12:00:00Z"))
    project.api_store.add(order("o2", updated_at="2024-03-06T12:00:00Z"))
    project.run()
    cursor = cursor_positions(project.settings, "shop_api")
    assert cursor, "the main pipeline has a cursor"

    # days late, far beyond the 6 h the cursor re-reads: a new order, a change, and one after the window
    project.api_store.add(order("o3", updated_at="2024-03-02T10:00:00Z"))
    project.api_store.add(order("o1", updated_at="2024-03-03T09:00:00Z", status="shipped"))
    project.api_store.add(order("o4", updated_at="2024-03-04T00:00:00Z"))
    project.load("shop_api")
    assert project.scalar("select count(*) from raw_shop_api.orders where id in ('o3', 'o4')") == 0

    # one request per chunk (a page reaching past the chunk's end is the last): the second one is refused
    project.api.faults = FaultPlan(sequence=("ok", "401"))
    done = runbook.run(BACKFILL, project.root, expect=ExitCode.LOAD_FAILED)  # the runbook's, as written
    out = done.stdout
    assert done.returncode == ExitCode.LOAD_FAILED, shown(done)
    assert "chunks 3 ok=2 failed=1" in out and "2024-03-02T00:00:00Z FAILED" in out and "401" in out, out
    assert chunks(project) == [("2024-03-01", "ok"), ("2024-03-02", "failed"), ("2024-03-03", "ok")]
    assert project.canonical("orders")[("o1",)][2] == "shipped"  # the chunks that landed were built
    assert ("o3",) not in project.canonical("orders")

    project.api.faults = FaultPlan()
    requests = project.api.requests_served
    done = runbook.run(BACKFILL, project.root)  # the runbook's resume (its --chunk is the recorded one)
    out = done.stdout
    assert done.returncode == ExitCode.OK, shown(done)
    assert project.api.requests_served == requests + 1, "only the failed chunk is extracted again"
    assert "chunks 1 ok=1 failed=0 resumed, 2 already ok" in out, out
    assert chunks(project) == [("2024-03-01", "ok"), ("2024-03-02", "ok"), ("2024-03-03", "ok")]
    orders = project.canonical("orders")
    assert set(orders) == {("o1",), ("o2",), ("o3",)}, "o4 is updated at --end, which is excluded"
    assert orders[("o1",)][2] == "shipped"
    assert cursor_positions(project.settings, "shop_api") == cursor
    runs = project.query("select exit_code from ops.elt_runs where command = 'backfill' order by started_at")
    assert runs == [(1,), (0,)]
    # its loads are told apart from the scheduled ones by their dlt schema
    schemas = project.query("select schema_name, count(*) from raw_shop_api._dlt_loads group by 1 order by 1")
    assert schemas == [("elt_shop_api_backfill", 3), ("shop_api", 2)]

    # the same backfill again: every version lands onto itself
    snapshot, raw = project.snapshot(), raw_rows(project, "raw_shop_api.orders", "id")
    done = backfill("shop_api", *WINDOW)
    assert done.returncode == ExitCode.OK, shown(done)
    assert project.snapshot() == snapshot
    assert raw_rows(project, "raw_shop_api.orders", "id") == raw
    assert cursor_positions(project.settings, "shop_api") == cursor


def test_backfill_lands_late_database_rows_and_a_file_corrected_behind_the_manifest(project: Project) -> None:
    project.app_db.upsert_customer(**customer("c1", updated_at="2024-03-06 09:00:00"))
    project.api_store.add(order("o1"))
    path = project.deliver("payments_20240301_01.csv", [payment("p1", amount="20.00")], delivered(2))
    project.run()
    cursors = {source: cursor_positions(project.settings, source) for source in ("app_db", "payments_files")}

    # a customer committed days late; the file corrected in place with the same size and mtime (the
    # manifest's blind spot)
    project.app_db.upsert_customer(**customer("c2", updated_at="2024-03-02 09:00:00"))
    project.app_db.upsert_customer(**customer("c3", updated_at="2024-03-05 09:00:00"))  # outside the window
    stat = path.stat()
    path.write_bytes(path.read_bytes().replace(b"20.00", b"25.00"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    project.load("app_db", "payments_files")
    assert project.scalar("select count(*) from raw_app_db.customers where id = 'c2'") == 0
    assert project.scalar("select amount from raw_payments_files.payments where payment_id = 'p1'") == "20.00"

    done = backfill("app_db", *WINDOW)
    assert done.returncode == ExitCode.OK, shown(done)
    done = backfill("payments_files", "--start", "2024-03-01T12:00:00Z", "--end", "2024-03-01T13:00")
    assert done.returncode == ExitCode.OK, shown(done)
    assert set(project.canonical("customers")) == {("c1",), ("c2",)}
    assert project.canonical("payments")[("p1",)][2] == Decimal("25.00")
    for source, cursor in cursors.items():
        assert cursor_positions(project.settings, source) == cursor, source


def test_parallel_chunks_land_what_sequential_chunks_land_after_a_killed_backfills_package(project: Project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o0", updated_at="2024-03-08T12:00:00Z"))
    project.run()
    created = "2024-02-28T00:00:00Z"  # before every version: none is updated_before_created
    late = [
        order(f"o{day}{n}", created_at=created, updated_at=f"2024-03-0{day}T{6 * n:02d}:30:00Z")
        for day in (1, 2, 3)
        for n in range(3)
    ]
    for record in late:
        project.api_store.add(record)

    # a backfill killed before its load left a package with a version the API no longer serves
    project.api_store.add(order("o9", created_at=created, updated_at="2024-03-02T03:00:00Z"))
    left = backfill_pipeline(project.settings, "shop_api", 1)
    window = {"start": datetime(2024, 3, 2, tzinfo=UTC), "end": datetime(2024, 3, 3, tzinfo=UTC)}
    left.extract(spec("shop_api").dlt_source(**window).clone(with_name=backfill_schema_name("shop_api")))
    left.normalize()
    (package,) = left.list_normalized_load_packages()
    project.api_store.add(order("o9", created_at=created, updated_at="2024-03-09T00:00:00Z"))

    done = backfill("shop_api", *WINDOW, "--chunk", "1d", "--parallel", "2")
    assert done.returncode == ExitCode.OK, shown(done)
    out = done.stdout
    assert "packages a killed backfill left: finished=1;" in out, out
    if project.warehouse.target == "postgres":
        assert "chunks 3 ok=3 failed=0 (up to 2 at once)" in out, out
    else:
        assert "one after another: DuckDB admits one writer" in out, out
    assert project.query(f"select status from raw_shop_api._dlt_loads where load_id = '{package}'") == [(0,)]
    assert project.query("select _version from raw_shop_api.orders where id = 'o9'") == [("2024-03-02T03:00:00Z",)]
    expected = {("o0",), ("o9",)} | {(record["id"],) for record in late}
    assert set(project.canonical("orders")) == expected

    # a sequential backfill of the same window finds nothing the parallel one missed or added
    snapshot, raw = project.snapshot(), raw_rows(project, "raw_shop_api.orders", "id")
    done = backfill("shop_api", *WINDOW, "--chunk", "1d")
    assert done.returncode == ExitCode.OK, shown(done)
    assert raw_rows(project, "raw_shop_api.orders", "id") == raw
    assert project.snapshot() == snapshot


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nope", *WINDOW], "unknown source"),
        (["shop_api", "--start", "2024-03-04", "--end", "2024-03-01"], "must be after --start"),
        (["shop_api", "--start", "2024-03-01", "--end", "2024-03-01T00:00:00Z"], "must be after --start"),
        (["shop_api", "--start", "yesterday", "--end", "2024-03-01"], "is not a date or UTC timestamp"),
        (["shop_api", *WINDOW, "--chunk", "1 day"], "is not a duration"),
        (["shop_api", *WINDOW, "--chunk", "0d"], "is not a duration"),
        (["shop_api", "--start", "2024-03-01", "--end", "2025-03-01", "--chunk", "1m"], "more than 1000 chunks"),
        (["shop_api", *WINDOW, "--parallel", "0"], "at least 1"),
    ],
)
def test_bad_arguments_exit_2_before_touching_anything(arguments: list[str], message: str, tmp_path: Path) -> None:
    # a warehouse and a dlt folder that any lock or write would create: neither may appear
    env = {
        "ELT_TARGET": "duckdb",
        "ELT_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "ELT_STATE_DIR": str(tmp_path),
    }
    done = backfill(*arguments, env=env)
    assert done.returncode == 2, shown(done)
    assert message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_window_splits_into_chunks_ending_at_its_end() -> None:
    start, end, parts = validate("shop_api", "2024-03-01", "2024-03-04", "1d", 1)
    assert (start, end) == (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC))
    assert [(c.start.day, c.end.day) for c in parts] == [(1, 2), (2, 3), (3, 4)]
    ragged = split_window(start, start + timedelta(hours=15), timedelta(hours=6))
    assert [c.end - c.start for c in ragged] == [timedelta(hours=6), timedelta(hours=6), timedelta(hours=3)]
    assert len(validate("app_db", "2024-03-01T05:00+02:00", "2024-03-01T06:00:00Z", None, 1)[2]) == 1
    with pytest.raises(UsageError):
        validate("app_db", "2024-03-01", "2024-03-01T00:00:00Z", None, 1)

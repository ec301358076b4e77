"""The worst hour: PostgreSQL goes away under a running `elt run` — every backend terminated, or the server
crashed (`pg_ctl stop -m immediate`) and started again — at random moments of the loads and of dbt.

Every crashed run ends with one line on stdout and its documented exit code (9, or 0 when the run had ended
first), no traceback, and every line of stderr one JSON object; it writes nothing after the session that
held its run lock is gone (no load completes, no model publishes or consumes a batch: the ledger's own
row alone is finished once the server answers again); and after the crashes a plain run exits 0 with its
books balanced and gives the tables a warehouse that ran the same days uninterrupted has.

PostgreSQL only: DuckDB runs inside the harness's process, there is no server to lose (the kill tests
cover its crashes). `LOST_WAREHOUSE_CRASHES` sets how many crashes (default 2; `make soak` runs 8),
`LOST_WAREHOUSE_SEED` their moments.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from loaders.core.outcomes import ExitCode
from loaders.simulate import SimulationConfig, generate
from tests.support.cli import PROJECT_DIR
from tests.support.postgres import LocalServer
from tests.support.project import Project, Warehouse

WORLD = SimulationConfig(seed=17, customers=40, orders_per_day=60)
CRASHES = int(os.environ.get("LOST_WAREHOUSE_CRASHES", "1"))  # make soak: 8
SEED = int(os.environ.get("LOST_WAREHOUSE_SEED", "7"))
# Writes a run makes after its lock: what must not happen once it is gone (the ledger's row is the
# harness's own bookkeeping, finished when the warehouse answers again, and is not among them).
LATE_WRITES = (
    "select count(*) from ops.dbt_batches where published_at > %(at)s",
    "select count(*) from ops.dbt_consumed where consumed_at > %(at)s",
)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    local.start()
    try:
        yield local
    finally:
        local.remove()


def database(server: LocalServer, name: str) -> Warehouse:
    admin = psycopg2.connect(**libpq(server.env))
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    admin.close()
    return Warehouse("postgres", {**server.env, "PGDATABASE": name, "ELT_TARGET": "postgres"})


def libpq(env: dict[str, str]) -> dict[str, Any]:
    return {"host": env["PGHOST"], "port": env["PGPORT"], "user": env["PGUSER"], "dbname": env["PGDATABASE"]}


def elt_run(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "loaders.cli", "run"],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def server_time(env: dict[str, str]) -> Any:
    with psycopg2.connect(**libpq(env)) as conn:
        cursor = conn.cursor()
        cursor.execute("select clock_timestamp()")
        return cursor.fetchone()[0]


def terminate_backends(env: dict[str, str]) -> None:
    conn = psycopg2.connect(**libpq(env))
    conn.autocommit = True
    conn.cursor().execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where datname = current_database() and pid <> pg_backend_pid()"
    )
    conn.close()


def late_writes(env: dict[str, str], after: Any) -> list[int]:
    with psycopg2.connect(**libpq(env)) as conn:
        cursor = conn.cursor()
        counts = []
        for query in LATE_WRITES:
            try:
                cursor.execute(query, {"at": after})
                counts.append(int(cursor.fetchone()[0]))
            except psycopg2.errors.UndefinedTable:
                conn.rollback()
                counts.append(0)
        return counts


def assert_one_line_no_traceback(code: int, stdout: str, stderr: str) -> None:
    assert code in (ExitCode.OK, ExitCode.WAREHOUSE_UNREACHABLE), (code, stdout, stderr[-3000:])
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    if code == ExitCode.WAREHOUSE_UNREACHABLE:
        assert lines[0].startswith("elt run FAILED(warehouse): "), lines[0]
    assert "Traceback" not in stdout + stderr, stderr[-3000:]
    for line in stderr.splitlines():
        json.loads(line)  # every line of stderr is one JSON object


@pytest.mark.slow
def test_a_warehouse_lost_mid_run_ends_it_cleanly_and_the_next_run_repairs_everything(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    crashed = database(server, "crashed")
    uninterrupted = database(server, "uninterrupted")
    with Project.started(crashed, tmp_path, monkeypatch, name="crashed") as project:
        generate(project.root, WORLD, through_day=1)
        started = time.monotonic()
        first = elt_run(project.env())
        out, err = first.communicate(timeout=900)
        assert first.returncode == ExitCode.OK, out + err[-3000:]
        longest = time.monotonic() - started

        outcomes = []
        for day in range(2, 2 + CRASHES):
            generate(project.root, WORLD, through_day=day)
            proc = elt_run(project.env())
            time.sleep(rng.uniform(1.0, longest))
            lost_at = server_time(project.env())
            how = rng.choice(["backends", "server"])
            if how == "backends":
                terminate_backends(project.env())
            else:
                server.crash()
                time.sleep(rng.uniform(0.5, 3.0))
                server.start()
            out, err = proc.communicate(timeout=900)
            assert_one_line_no_traceback(proc.returncode, out, err)
            if proc.returncode == ExitCode.WAREHOUSE_UNREACHABLE:
                assert late_writes(project.env(), lost_at) == [0, 0], f"{how} on day {day}: {out}"
            outcomes.append((day, how, proc.returncode, out.strip()))

            # the next scheduled run, the same day: it repairs what the crash left, books balanced
            repaired = elt_run(project.env())
            out, err = repaired.communicate(timeout=900)
            assert repaired.returncode == ExitCode.OK, out + err[-3000:]
            books = [json.loads(line) for line in err.splitlines() if '"event": "book"' in line]
            assert books and all(book["balanced"] for book in books), books
        assert any(code == ExitCode.WAREHOUSE_UNREACHABLE for _, _, code, _ in outcomes), outcomes
        after_crashes = project.snapshot()

    with Project.started(uninterrupted, tmp_path, monkeypatch, name="uninterrupted") as reference:
        for day in range(1, 2 + CRASHES):
            generate(reference.root, WORLD, through_day=day)
            reference.run()
        assert after_crashes == reference.snapshot(), outcomes

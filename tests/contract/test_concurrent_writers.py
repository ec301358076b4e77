"""One writer at a time, whoever starts dbt: a plain `dbt build` from the project root started at the same
moment as a scheduled `elt run` (new data waiting in every source) leaves exactly what a full refresh
gives, and the next run is clean.

On PostgreSQL both finish: each model's transaction and each load wait for the same advisory lock. On
DuckDB the database file admits one writing process; the other one fails with DuckDB's own lock error,
having changed nothing, and the next run lands and builds what it did not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loaders.core.outcomes import ExitCode
from loaders.ops.dbt import run_dbt
from loaders.simulate import SimulationConfig, generate
from loaders.warehouse import connect
from tests.contract.records import assert_full_refresh_reproduces
from tests.support.dbt_project import copy_of_the_dbt_project
from tests.support.project import Project

PROJECT_DIR = Path(__file__).resolve().parents[2]
WORLD = SimulationConfig(seed=23, customers=30, orders_per_day=60, late_dimension_rate=0.3, invalid_rate=0.1)
LOCKED_OUT = "Could not set lock on file"


def start(args: list[str], log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DBT_PROFILES_DIR"}
    return subprocess.Popen(args, cwd=PROJECT_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


@pytest.mark.warehouses("postgres")
def test_plain_dbt_build_beside_elt_run_converges(project: Project, tmp_path: Path) -> None:
    generate(project.root, WORLD, through_day=1)
    project.run()
    generate(project.root, WORLD, through_day=3)  # every source has news for the scheduled run

    dbt_log, elt_log = tmp_path / "dbt.log", tmp_path / "elt.log"
    plain_dbt = start([str(Path(sys.executable).with_name("dbt")), "build"], dbt_log)
    elt_run = start([sys.executable, "-m", "loaders.cli", "run"], elt_log)
    codes = (plain_dbt.wait(timeout=600), elt_run.wait(timeout=600))
    outputs = (dbt_log.read_text(), elt_log.read_text())

    if project.warehouse.target == "postgres":
        errors = [line for output in outputs for line in output.splitlines() if "rror" in line]
        assert codes == (0, ExitCode.OK), "\n".join(errors)
    else:
        assert 0 in codes, outputs
        for code, output in zip(codes, outputs, strict=True):
            assert code == 0 or LOCKED_OUT in output, output[-3000:]

    # whatever interleaving happened, the next scheduled run is clean and equals a full refresh
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    assert_full_refresh_reproduces(project)


@pytest.mark.warehouses("duckdb")
def test_plain_dbt_build_waits_while_a_loader_holds_the_warehouse(project: Project, tmp_path: Path) -> None:
    """The mechanism itself: while a load is in progress (the writer lock held, or DuckDB's file open for
    writing), a plain `dbt build` changes nothing — it waits on PostgreSQL, it fails on DuckDB."""
    import time

    from loaders.warehouse import connect
    from loaders.warehouse.locks import writer_lock

    generate(project.root, WORLD, through_day=1)
    project.run()
    generate(project.root, WORLD, through_day=2)
    project.load()  # landed, not yet built: the models have loads to consume
    consumed = "select count(*) from ops.dbt_consumed"
    before = project.scalar(consumed)

    log = tmp_path / "dbt.log"
    if project.warehouse.target == "postgres":
        waiting = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        with writer_lock(project.settings):
            plain_dbt = start([str(Path(sys.executable).with_name("dbt")), "build"], log)
            while plain_dbt.poll() is None and not project.scalar(waiting):
                time.sleep(0.2)
            assert plain_dbt.poll() is None, log.read_text()[-2000:]  # it queued behind the loader
            time.sleep(2)
            assert project.scalar(consumed) == before
        assert plain_dbt.wait(timeout=600) == 0, log.read_text()[-3000:]
    else:
        with connect(project.settings, read_only=False):  # a loader's connection
            plain_dbt = start([str(Path(sys.executable).with_name("dbt")), "build"], log)
            assert plain_dbt.wait(timeout=600) != 0
        assert LOCKED_OUT in log.read_text()
        assert project.scalar(consumed) == before
        code, line = project.elt_run()
        assert code == ExitCode.OK, line
    assert project.scalar(consumed) > before
    assert_full_refresh_reproduces(project)


RENDER_PROBE = """\
{{ config(materialized='table', post_hook="insert into ops.render_probe select 'post-hook', txid_current(), 1") }}
{%- set pending = unconsumed_loads('shop_api') %}
{%- if execute %}
{%- do run_query(
    "insert into ops.render_probe select 'render', txid_current(), count(*) from pg_locks"
    " where locktype = 'advisory' and granted and pid = pg_backend_pid()"
) %}
{%- endif %}
select 1 as probe
"""


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_pending_ids_are_read_under_the_lock_in_the_transaction_that_records_them(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the literal ids rest on (macros/incremental.sql, pending_ids): dbt renders a model on the connection
    and in the transaction its materialization commits, and the writer lock is taken at render. A dbt
    upgrade that broke either would let a load complete between the read and the post-hook."""
    generate(project.root, WORLD, through_day=1)
    project.run()
    copy = copy_of_the_dbt_project(tmp_path / "dbt")
    (copy / "models" / "render_probe.sql").write_text(RENDER_PROBE)
    monkeypatch.setenv("ELT_PROJECT_DIR", str(copy))
    with connect(project.settings, read_only=False) as conn:
        conn.cursor().execute("create table ops.render_probe (step varchar, txid bigint, advisory_locks integer)")
    outcome = run_dbt(project.settings, ["run", "--select", "render_probe"])
    assert outcome.returncode == 0, outcome.statuses
    steps = {step: (txid, locks) for step, txid, locks in project.query("select * from ops.render_probe")}
    assert set(steps) == {"render", "post-hook"}, steps
    assert steps["render"][0] == steps["post-hook"][0], steps  # one transaction, from render to commit
    assert steps["render"][1] >= 1, steps  # the writer lock was already held when the ids were read


def dbt_events(stderr: str) -> list[str]:
    return [event.get("dbt_event", "") for event in map(json.loads, stderr.splitlines()) if event["event"] == "dbt_log"]


@pytest.mark.warehouses("postgres")
def test_elt_reads_its_own_build_whatever_a_plain_dbt_beside_it_does(project: Project, tmp_path: Path) -> None:
    """elt judges its build by dbt's structured output of its own invocation, and keeps its dbt artifacts in a
    target folder of its own: a plain `dbt build --select customers` from the same folder, at the same time
    (PostgreSQL) or in between (DuckDB), changes nothing elt reports, and neither re-parses the project."""
    generate(project.root, WORLD, through_day=1)
    project.run()
    solo = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "build"], cwd=PROJECT_DIR, capture_output=True, text=True
    )
    assert solo.returncode == 0, solo.stdout + solo.stderr[-3000:]
    plain = [str(Path(sys.executable).with_name("dbt")), "build", "--select", "customers"]

    if project.warehouse.target == "postgres":
        beside = subprocess.Popen(
            [sys.executable, "-m", "loaders.cli", "build"],
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # elt's dbt is building; the plain one waits for the writer lock and ends later
        assert subprocess.run(plain, cwd=PROJECT_DIR, capture_output=True, text=True).returncode == 0
        out, err = beside.communicate(timeout=600)
    else:
        assert subprocess.run(plain, cwd=PROJECT_DIR, capture_output=True, text=True).returncode == 0
        again = subprocess.run(
            [sys.executable, "-m", "loaders.cli", "build"], cwd=PROJECT_DIR, capture_output=True, text=True
        )
        out, err = again.stdout, again.stderr
    assert out == solo.stdout, (out, solo.stdout)  # its own build, counted alike
    models = len(list((PROJECT_DIR / "models").rglob("*.sql")))  # every model of the project, built
    assert out.startswith(f"elt build: models built={models} failed=0;"), out
    assert "UnableToPartialParse" not in dbt_events(err), "elt re-parsed the project after a plain dbt"
    replain = subprocess.run([*plain, "--log-format", "json"], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert '"UnableToPartialParse"' not in replain.stdout, "a plain dbt re-parsed the project after elt"

"""A mid-run crash resumes: `elt run` killed with SIGKILL at several points (inside the API extract, in
the loads, in dbt), then run again, leaves no duplicate and exactly the tables of a run never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from loaders.simulate import FaultPlan, SimulationConfig, generate
from tests.support.project import Project

pytestmark = pytest.mark.warehouses("duckdb", "postgres")

WORLD = SimulationConfig(seed=5, customers=60, orders_per_day=150, invalid_rate=0.05, damaged_rate=0.02)
DAYS = 2
# Where each interrupted run is killed: (a line the run's JSON log must show, then seconds to wait).
# The API answers its third request slowly, so the first kill lands inside the orders extract.
KILL_POINTS = (
    ('"load_started", "source": "shop_api"', 0.8),
    ('"load_started", "source": "app_db"', 0.1),
    ('"load_started", "source": "payments_files"', 0.2),
    ('"dbt_started"', 2.0),
)
RAW_KEYS = {
    "raw_shop_api.orders": ("id", "_version"),
    "raw_app_db.customers": ("id", "_version"),
    "raw_app_db.products": ("sku", "_version"),
    "raw_payments_files.payments": ("payment_id", "_version"),
}
STAGED_KEYS = {
    "staging.stg_shop_api__orders": ("order_id", "version_key"),
    "staging.stg_app_db__customers": ("customer_id", "version_key"),
    "staging.stg_app_db__products": ("sku", "version_key"),
    "staging.stg_payments_files__payments": ("payment_id", "version_key"),
}


def elt_run(project: Project, kill_at: tuple[str, float] | None = None) -> tuple[int | None, str]:
    """`elt run` in its own process group; SIGKILL the whole group (dbt too) at the kill point."""
    log_path = project.root.parent / f"elt-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loaders.cli", "run"],
            stdout=log,
            stderr=log,
            env=dict(os.environ),
            start_new_session=True,
        )
    if kill_at is not None:
        marker, delay = kill_at
        while proc.poll() is None and marker not in log_path.read_text():
            time.sleep(0.02)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=600)
    return proc.returncode, log_path.read_text()


def test_sigkilled_runs_resume_to_the_uninterrupted_result(
    warehouse, reference_warehouse, tmp_path, monkeypatch, runbook
):
    with Project.started(reference_warehouse, tmp_path, monkeypatch, name="reference") as reference:
        generate(reference.root, WORLD, through_day=DAYS)
        reference.run()
        expected = reference.snapshot()

    faults = FaultPlan(sequence=["ok", "ok", "slow"], slow_seconds=3.0)
    with Project.started(warehouse, tmp_path, monkeypatch, faults=faults, name="crashed") as project:
        generate(project.root, WORLD, through_day=DAYS)
        for kill_at in KILL_POINTS:
            code, log = elt_run(project, kill_at)
            assert code == -signal.SIGKILL, f"the run ended before its kill point {kill_at}: {log[-2000:]}"

        # the runbook's recovery, as written: look (the last killed run is still `running`), then run
        status = runbook.run("Recover after a crash", tmp_path, {"COLUMNS": "200"})
        assert "running" in status.stdout, status.stdout
        runbook.run("Recover after a crash", tmp_path)

        # each landed (key, version) once where the models read it, and in raw itself where dlt merges raw
        # (Spark's lake is appended to: a resumed package or a re-read lands a version again there)
        layers = STAGED_KEYS if project.warehouse.target == "spark" else {**RAW_KEYS, **STAGED_KEYS}
        for table, (key, version) in layers.items():
            total, distinct = project.query(f"select count(*), count(distinct {key} || '|' || {version}) from {table}")[
                0
            ]
            assert total == distinct, f"duplicate versions in {table}"
        assert project.snapshot() == expected

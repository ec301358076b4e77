"""Crashes anywhere: `elt run` SIGKILLed at random moments — in an extract, a normalize, a load, a dbt model
or between two models — with the sources changing before some of the runs. After the next clean run:

- no version any source serves now is missing from raw (rows lost = 0), and raw holds no duplicate;
- the canonical tables and open quarantine rows equal a `--full-refresh` of what was landed.

`make test` tries a few kills per warehouse (`SOAK_KILLS`, default 4). `make soak` runs hundreds and prints
kills tried (by the phase the run was in), API faults injected and rows lost.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from loaders.simulate import FaultPlan, SimulationConfig, generate
from tests.contract.records import assert_full_refresh_reproduces
from tests.support.project import Project

WORLD = SimulationConfig(seed=31, customers=25, orders_per_day=60, invalid_rate=0.05, late_dimension_rate=0.2)
RAW = {
    "raw_shop_api.orders": "id",
    "raw_app_db.customers": "id",
    "raw_app_db.products": "sku",
    "raw_payments_files.payments": "payment_id",
}
PHASES = (("dbt_started", "dbt"), ("load_started", "load"))


def served_versions(root: Path) -> dict[str, set[tuple[str, str]]]:
    """The (key, version) pairs the sources serve now: the API's latest version per id, the app database's
    rows, every row of every settlement file."""
    with closing(sqlite3.connect(root / "api.db")) as conn:
        bodies = [
            json.loads(body)
            for (body,) in conn.execute(
                "select body from order_versions v"
                " where seq = (select max(seq) from order_versions w where w.id = v.id)"
            )
        ]
    with closing(sqlite3.connect(root / "app.db")) as conn:
        customers = set(conn.execute("select id, updated_at from customers"))
        products = set(conn.execute("select sku, updated_at from products"))
    payments = set()
    for path in (root / "payments").glob("payments_*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            payments |= {(row["payment_id"], row["updated_at"]) for row in csv.DictReader(handle)}
    return {
        "raw_shop_api.orders": {(body["id"], body["updated_at"]) for body in bodies},
        "raw_app_db.customers": {(key, str(version)) for key, version in customers},
        "raw_app_db.products": {(key, str(version)) for key, version in products},
        "raw_payments_files.payments": payments,
    }


def killed_run(project: Project, rng: random.Random, longest: float) -> str:
    """Start `elt run`, SIGKILL its process group after a random delay; return the phase it was in."""
    log = project.root.parent / f"kill-{time.monotonic_ns()}.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loaders.cli", "run"],
            stdout=handle,
            stderr=handle,
            env=dict(os.environ),
            start_new_session=True,
        )
    time.sleep(rng.uniform(0.1, longest))
    if proc.poll() is not None:
        proc.wait()
        return "finished"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    text = log.read_text()
    last = max((text.rfind(event), phase) for event, phase in PHASES)
    return last[1] if last[0] >= 0 else "start"


@pytest.mark.on_demand  # make soak
def test_random_kills_lose_nothing_and_converge(warehouse, tmp_path, monkeypatch) -> None:
    kills = int(os.environ.get("SOAK_KILLS", "4"))
    rng = random.Random(int(os.environ.get("SOAK_SEED", "5")))
    faults = FaultPlan.from_rate(0.3, seed=3)
    with Project.started(warehouse, tmp_path, monkeypatch, faults=faults) as project:
        day = 1
        generate(project.root, WORLD, through_day=day)
        code, line = project.elt_run()
        assert code == 0, line
        started = time.monotonic()
        code, line = project.elt_run()
        longest = time.monotonic() - started  # kills fall anywhere within an incremental run
        assert code == 0, line

        phases: Counter[str] = Counter()
        for _ in range(kills):
            if rng.random() < 0.5:
                day += 1
                generate(project.root, WORLD, through_day=day)
            phases[killed_run(project, rng, longest)] += 1

        code, line = project.elt_run()
        assert code == 0, line
        lost = 0
        for table, versions in served_versions(project.root).items():
            key = RAW[table]
            landed = set(project.query(f"select {key}, _version from {table}"))
            missing = versions - landed
            lost += len(missing)
            assert not missing, f"{table}: {sorted(missing)[:5]}"
            total, distinct = project.query(f"select count(*), count(distinct {key} || '|' || _version) from {table}")[
                0
            ]
            assert total == distinct, f"duplicate versions in {table}"
        assert_full_refresh_reproduces(project)
        assert project.api is not None
        requests = project.api.requests_served
        injected = Counter(faults.fault_for(n) for n in range(1, requests + 1))
        injected.pop("ok", None)
        print(
            f"\nsoak[{warehouse.target}]: kills tried={kills} by phase={dict(phases)} days={day} "
            f"api requests={requests} faults injected={dict(injected)} rows lost={lost}"
        )

"""Contract 1.4: after a load, plain `dbt build` from the project root works with no flags, reading the
warehouse from profiles.yml and the environment alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.warehouses("duckdb", "postgres")

PROJECT = Path(__file__).resolve().parents[2]


def test_plain_dbt_build_from_the_project_root(project) -> None:
    project.load()
    env = {k: v for k, v in os.environ.items() if k not in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR")}

    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "build"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "ERROR=0" in proc.stdout
    built = project.query("select table_name from information_schema.tables where table_schema = 'analytics'")
    assert sorted(name for (name,) in built) == [
        "customers",
        "daily_revenue",
        "order_items",
        "orders",
        "payments",
        "products",
    ]


def test_elt_build_passes_every_dbt_argument_through(project) -> None:
    """The on-call rebuild of one model and its children: `elt build --select orders+ --full-refresh`."""
    from tests.contract.records import customer, order

    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.run()
    before = project.snapshot()

    proc = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "build", "--select", "orders+", "--full-refresh"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.startswith("elt build: models built=1 failed=0;"), proc.stdout  # orders, nothing else
    assert project.snapshot() == before

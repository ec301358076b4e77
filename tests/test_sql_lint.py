"""SQL style: sqlfluff with the dbt templater, clean on both warehouses' dialects (config in .sqlfluff), for
the SQL that runs. The templater renders each model as dbt compiles it against the target, so each file
is linted twice: against an empty warehouse (every `is_incremental()` false, a first build) and against one
a run has built (`is_incremental()` true: the branches, the ids `pending_ids()` resolves and the
lookback that every later run compiles)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dbt_support.demo import dbt, run_demo

pytestmark = pytest.mark.warehouses("duckdb", "postgres")

PROJECT = Path(__file__).resolve().parent.parent
# a CTE that int_orders__versions renders only when it runs incrementally
INCREMENTAL_ONLY = "released_or_demoted as ("


def lint(env: dict[str, str], dialect: str) -> tuple[list[str], list[tuple[str, int, str, str]]]:
    sqlfluff = str(Path(sys.executable).with_name("sqlfluff"))
    proc = subprocess.run(
        [sqlfluff, "lint", "models", "macros", "tests/dbt", "--dialect", dialect, "--format", "json"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = json.loads(proc.stdout)
    linted = [entry["filepath"] for entry in report]
    violations = [
        (entry["filepath"], v["start_line_no"], v["code"], v["description"])
        for entry in report
        for v in entry["violations"]
    ]
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return linted, violations


@pytest.mark.parametrize("state", ["empty", "built"])
def test_sqlfluff_is_clean_for_the_warehouse_dialect(warehouse, state: str, tmp_path: Path) -> None:
    env = {**os.environ, **warehouse.env, "DBT_TARGET_PATH": str(tmp_path / "lint-target")}
    if state == "built":
        env = {**run_demo(tmp_path, warehouse.env), "DBT_TARGET_PATH": str(tmp_path / "lint-target")}
        # the warehouse is one where the models compile incrementally
        compiled = dbt(["compile", "--select", "int_orders__versions"], env)
        assert compiled.returncode == 0, compiled.stdout[-3000:]
        assert INCREMENTAL_ONLY in compiled.stdout

    linted, violations = lint(env, warehouse.target)

    models = sorted(str(path.relative_to(PROJECT)) for path in (PROJECT / "models").rglob("*.sql"))
    assert len(models) >= 19 and set(models) <= set(linted), linted
    assert violations == []

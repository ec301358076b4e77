"""SQL style: sqlfluff with the dbt templater, clean on both warehouses' dialects (config in .sqlfluff)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_sqlfluff_is_clean_for_the_warehouse_dialect(warehouse) -> None:
    sqlfluff = str(Path(sys.executable).with_name("sqlfluff"))
    proc = subprocess.run(
        [sqlfluff, "lint", "models", "macros", "tests/dbt", "--dialect", warehouse.target, "--format", "json"],
        cwd=PROJECT,
        env={**os.environ, **warehouse.env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(proc.stdout)
    linted = [entry["filepath"] for entry in report]
    violations = [(entry["filepath"], v["code"], v["description"]) for entry in report for v in entry["violations"]]
    assert sum(path.startswith("models/") for path in linted) >= 20, linted
    assert violations == []
    assert proc.returncode == 0, proc.stderr[-3000:]

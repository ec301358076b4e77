"""The project parses with no deprecation warning, with dbt's YAML schema checks on (dbt 1.11 makes them
only for some adapters: tests/dbt_support/dbt_with_schema_checks.py turns them on here), so a property
dbt has moved (a source's `freshness` or `loaded_at_field` outside `config:`, say) fails the suite now
rather than a later dbt. The checks are shown to run: the same parse of a project of one source whose
freshness is where the project's were warns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.dbt_support.demo import PROJECT_DIR, dbt_environment

FRESHNESS_AT_THE_TOP = """
version: 2
sources:
  - name: app_db
    schema: raw_app_db
    loaded_at_field: "to_timestamp(cast(_dlt_load_id as double precision))"
    freshness:
      warn_after: {count: 24, period: hour}
    tables:
      - name: customers
"""


def parse(project_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`dbt parse --warn-error` from scratch, with dbt's YAML schema checks on."""
    env = dbt_environment({"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")})
    return subprocess.run(
        [
            *(sys.executable, "-m", "tests.dbt_support.dbt_with_schema_checks"),
            *("parse", "--no-partial-parse", "--warn-error"),
            *("--project-dir", str(project_dir), "--profiles-dir", str(project_dir)),
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dbt_parse_with_its_schema_checks_warns_of_nothing(tmp_path: Path) -> None:
    proc = parse(PROJECT_DIR, tmp_path)

    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Deprecat" not in proc.stdout, proc.stdout[-3000:]


def test_the_schema_checks_run(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    (probe / "models").mkdir(parents=True)
    (probe / "dbt_project.yml").write_text("name: probe\nversion: '1.0'\nconfig-version: 2\nprofile: elt\n")
    (probe / "profiles.yml").write_text((PROJECT_DIR / "profiles.yml").read_text())
    (probe / "models" / "_sources.yml").write_text(FRESHNESS_AT_THE_TOP)

    proc = parse(probe, tmp_path)

    assert proc.returncode != 0
    assert "PropertyMovedToConfigDeprecation" in proc.stdout, proc.stdout[-3000:]

"""`elt check`, on every warehouse: with good settings every line is ok and it exits 0; each broken setting
(a wrong API token, an API nobody listens on, a missing SQLite file, a missing payments folder, an
unreachable warehouse) fails its own line with the reason, exits 10, never prints a secret, loads nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from loaders.core.outcomes import ExitCode
from tests.support.cli import elt
from tests.support.postgres import free_port
from tests.support.project import Project

pytestmark = pytest.mark.warehouses("duckdb", "postgres")


def check(**env: str) -> subprocess.CompletedProcess[str]:
    return elt("check", env=env, timeout=120)


def lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())


def test_good_settings_pass_every_check(project: Project) -> None:
    proc = check()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(lines(proc)) == {"warehouse", "shop_api", "app_db", "payments_files"}
    assert all(result.startswith("ok — ") for result in lines(proc).values()), proc.stdout
    assert project.token not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("name", "broken", "expected"),
    [
        ("shop_api", lambda p: {"SOURCES__SHOP_API__TOKEN": "wrong-" + p.token}, "401, the token is not accepted"),
        ("shop_api", lambda p: {"SOURCES__SHOP_API__BASE_URL": f"http://127.0.0.1:{free_port()}"}, "cannot reach"),
        ("app_db", lambda p: {"SOURCES__APP_DB__CREDENTIALS": f"sqlite:///{p.root}/gone.db"}, "does not exist"),
        ("payments_files", lambda p: {"SOURCES__PAYMENTS_FILES__BUCKET_URL": str(p.root / "gone")}, "no such folder"),
    ],
)
def test_a_broken_source_setting_fails_its_line(project: Project, name: str, broken, expected: str) -> None:
    env = broken(project)
    proc = check(**env)
    assert proc.returncode == ExitCode.CHECK_FAILED, proc.stdout + proc.stderr
    results = lines(proc)
    assert results[name].startswith("FAILED — ") and expected in results[name], results
    assert all(result.startswith("ok") for other, result in results.items() if other != name), results
    for secret in (project.token, env.get("SOURCES__SHOP_API__TOKEN", project.token)):
        assert secret not in proc.stdout + proc.stderr


def test_an_unreachable_warehouse_fails_its_line(project: Project) -> None:
    if project.warehouse.target == "duckdb":
        broken = {"ELT_DUCKDB_PATH": str(project.root / "not-a-database.duckdb")}
        Path(broken["ELT_DUCKDB_PATH"]).write_text("this is not a DuckDB file")
    elif project.warehouse.target == "spark":
        broken = {"ELT_SPARK_PORT": str(free_port())}
    else:
        broken = {"PGHOST": "127.0.0.1", "PGPORT": str(free_port())}
    proc = check(**broken)
    assert proc.returncode == ExitCode.CHECK_FAILED, proc.stdout + proc.stderr
    assert lines(proc)["warehouse"].startswith("FAILED — "), proc.stdout

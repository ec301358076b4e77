"""Fixtures shared by every test of warehouse behaviour: each runs once on DuckDB and once on PostgreSQL —
or, with ELT_TEST_WAREHOUSES=spark (`make test-spark`), on Spark.

PostgreSQL is the server the PG* variables point at, or else a throwaway one this session starts from
the machine's server binaries. Each test gets its own database (PostgreSQL) or file (DuckDB). Spark is a
Thrift server in local mode this session starts (tests/support/spark.py); each test gets it emptied,
and a lake folder of its own.

The whole suite runs off UTC: the process's time zone is Asia/Kolkata (+05:30, inherited by the dbt
subprocesses and by DuckDB sessions that are not pinned), and the throwaway server's default is
America/New_York, so a timestamp that any piece reads in a local zone instead of UTC makes a test fail.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import throwaway_postgres
from tests.support.project import Project, Warehouse
from tests.support.spark import SparkServers

pytest_plugins = ["tests.support.runbook"]  # the `runbook` fixture: docs/runbook.md's commands as written

PG_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
WAREHOUSES = os.environ.get("ELT_TEST_WAREHOUSES", "duckdb,postgres").split(",")

HOST_TIME_ZONE = "Asia/Kolkata"
os.environ["TZ"] = HOST_TIME_ZONE
time.tzset()


@pytest.fixture(scope="session", autouse=True)
def dbt_artifacts_per_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """dbt's target/ and logs/ per test session, so two sessions (or a developer's dbt) never share them."""
    folder = tmp_path_factory.mktemp("dbt")
    saved = {name: os.environ.get(name) for name in ("DBT_TARGET_PATH", "DBT_LOG_PATH")}
    os.environ["DBT_TARGET_PATH"] = str(folder / "target")
    os.environ["DBT_LOG_PATH"] = str(folder / "logs")
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, str]]:
    if os.environ.get("PGHOST"):
        yield {name: os.environ[name] for name in PG_VARIABLES if name in os.environ}
        return
    with throwaway_postgres() as env:
        yield env


def _fresh_postgres(server: dict[str, str]) -> Iterator[Warehouse]:
    import psycopg2

    name = f"elt_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(
        host=server["PGHOST"],
        port=server.get("PGPORT", "5432"),
        user=server.get("PGUSER"),
        password=server.get("PGPASSWORD") or None,
        dbname=server.get("PGDATABASE", "postgres"),
    )
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    try:
        yield Warehouse("postgres", {**server, "PGDATABASE": name, "ELT_TARGET": "postgres"})
    finally:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture(scope="session")
def spark_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkServers]:
    with SparkServers(tmp_path_factory.mktemp("spark")) as servers:
        yield servers


def _fresh_warehouse(
    request: pytest.FixtureRequest, target: str, folder: Path, spark_slot: int = 0
) -> Iterator[Warehouse]:
    if target == "duckdb":
        yield Warehouse("duckdb", {"ELT_TARGET": "duckdb", "ELT_DUCKDB_PATH": str(folder / "warehouse.duckdb")})
        return
    if target == "spark":
        env = request.getfixturevalue("spark_servers").emptied(spark_slot)
        yield Warehouse("spark", {**env, "ELT_TARGET": "spark", "ELT_LAKE_PATH": str(folder / "lake")})
        return
    yield from _fresh_postgres(request.getfixturevalue("postgres_server"))


@pytest.fixture(params=WAREHOUSES)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    yield from _fresh_warehouse(request, request.param, tmp_path)


@pytest.fixture
def fresh_warehouses(request: pytest.FixtureRequest, warehouse: Warehouse):
    """Makes more empty warehouses of the same kind as `warehouse`: `with fresh_warehouses(folder) as wh:`
    (a property test needs one per example)."""

    @contextlib.contextmanager
    def make(folder: Path) -> Iterator[Warehouse]:
        yield from _fresh_warehouse(request, warehouse.target, folder)

    return make


@pytest.fixture
def reference_warehouse(request: pytest.FixtureRequest, warehouse: Warehouse, tmp_path: Path) -> Iterator[Warehouse]:
    """A second, empty warehouse of the same kind, for a run to compare against (on Spark, a second server:
    its schemas have the same names)."""
    folder = tmp_path / "reference"
    folder.mkdir()
    yield from _fresh_warehouse(request, warehouse.target, folder, spark_slot=1)


@pytest.fixture
def project(warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """Sample sources in a temp folder, an orders API serving them, and the ELT pointed at both."""
    with Project.started(warehouse, tmp_path, monkeypatch) as started:
        yield started

"""Fixtures shared by every test of warehouse behaviour: each runs on DuckDB, on PostgreSQL or on both (below)
— or, with ELT_TEST_WAREHOUSES=spark (`make test-spark`), on Spark.

Which warehouse a test runs on: `make test` runs each warehouse test once, on DuckDB, unless it is marked
`@pytest.mark.warehouses(...)`: the stories whose SQL, locks or types differ between the dialects run on
both, and a share of the others on PostgreSQL instead, so each warehouse meets every kind of story.
ELT_TEST_MATRIX=full (`make test-matrix`) runs every warehouse test on every warehouse of
ELT_TEST_WAREHOUSES; a single warehouse there (`make test-spark`) runs every one on it.

PostgreSQL is the server the PG* variables point at, or else a throwaway one this session starts from
the machine's server binaries. Each test gets an empty database (PostgreSQL) or file (DuckDB) — the same
name in each test of a pytest worker, emptied in between, with a dbt target folder per warehouse, so dbt's
partial parsing (which re-parses everything when the connection or the vars change) carries from one test
to the next. Spark is a Thrift server in local mode this session starts (tests/support/spark.py); each
test gets it emptied, and a lake folder of its own.

Builds run without the lookback (ELT_LOOKBACK_VERSIONS=0): no promise may rest on it.

The whole suite runs off UTC: the process's time zone is Asia/Kolkata (+05:30, inherited by the dbt
subprocesses and by DuckDB sessions that are not pinned), and the throwaway server's default is
America/New_York, so a timestamp that any piece reads in a local zone instead of UTC makes a test fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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
FULL_MATRIX = os.environ.get("ELT_TEST_MATRIX", "") == "full"

HOST_TIME_ZONE = "Asia/Kolkata"
os.environ["TZ"] = HOST_TIME_ZONE
time.tzset()
os.environ["ELT_LOOKBACK_VERSIONS"] = "0"


def warehouses_for(node: pytest.Function) -> list[str]:
    """The warehouses a test runs on (module docstring)."""
    if FULL_MATRIX or len(WAREHOUSES) == 1:
        return WAREHOUSES
    marker = node.get_closest_marker("warehouses")
    chosen = marker.args if marker else WAREHOUSES[:1]
    return [name for name in WAREHOUSES if name in chosen] or WAREHOUSES[:1]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "warehouse" not in metafunc.fixturenames:
        return
    explicit = [m for m in metafunc.definition.iter_markers("parametrize") if "warehouse" in str(m.args[0])]
    if not explicit:
        metafunc.parametrize("warehouse", warehouses_for(metafunc.definition), indirect=True)


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


@pytest.fixture(scope="session")
def warehouses_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worker's warehouse folders (`<target>-<slot>/`): the same path for each test, emptied."""
    return tmp_path_factory.mktemp("warehouses", numbered=False)


def _fresh_postgres(server: dict[str, str], name: str = "", env: dict[str, str] | None = None) -> Iterator[Warehouse]:
    """An empty database `name` (else a new name) on the server; `env`: more of the warehouse's settings."""
    import psycopg2

    name = name or f"elt_test_{uuid.uuid4().hex[:12]}"

    admin = psycopg2.connect(
        host=server["PGHOST"],
        port=server.get("PGPORT", "5432"),
        user=server.get("PGUSER"),
        password=server.get("PGPASSWORD") or None,
        dbname=server.get("PGDATABASE", "postgres"),
    )
    admin.autocommit = True
    admin.cursor().execute(f'drop database if exists "{name}" with (force)')
    admin.cursor().execute(f'create database "{name}"')
    try:
        yield Warehouse("postgres", {**server, **(env or {}), "PGDATABASE": name, "ELT_TARGET": "postgres"})
    finally:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture(scope="session")
def spark_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkServers]:
    with SparkServers(tmp_path_factory.mktemp("spark")) as servers:
        yield servers


def _fresh_warehouse(request: pytest.FixtureRequest, target: str, folder: Path, slot: int = 0) -> Iterator[Warehouse]:
    """An empty warehouse of this kind: slot N of this worker's (the same place in every test); Spark's lake
    in `folder`."""
    homes = request.getfixturevalue("warehouses_home")
    home = homes / f"{target}-{slot}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    dbt = {"DBT_TARGET_PATH": str(homes / f"dbt-target-{target}-{slot}")}  # kept: dbt's parse carries over
    if target == "duckdb":
        yield Warehouse("duckdb", {**dbt, "ELT_TARGET": "duckdb", "ELT_DUCKDB_PATH": str(home / "warehouse.duckdb")})
        return
    if target == "spark":
        env = request.getfixturevalue("spark_servers").emptied(1 if slot == 1 else 0)
        yield Warehouse("spark", {**env, **dbt, "ELT_TARGET": "spark", "ELT_LAKE_PATH": str(folder / "lake")})
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    yield from _fresh_postgres(request.getfixturevalue("postgres_server"), f"elt_test_{worker}_{slot}", dbt)


@pytest.fixture
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    yield from _fresh_warehouse(request, request.param, tmp_path)


@pytest.fixture
def fresh_warehouses(request: pytest.FixtureRequest, warehouse: Warehouse):
    """Makes more empty warehouses of the same kind as `warehouse`: `with fresh_warehouses(folder) as wh:`
    (a property test needs one per example)."""

    @contextlib.contextmanager
    def make(folder: Path) -> Iterator[Warehouse]:
        yield from _fresh_warehouse(request, warehouse.target, folder, slot=2)

    return make


@pytest.fixture
def reference_warehouse(request: pytest.FixtureRequest, warehouse: Warehouse, tmp_path: Path) -> Iterator[Warehouse]:
    """A second, empty warehouse of the same kind, for a run to compare against (on Spark, a second server:
    its schemas have the same names)."""
    folder = tmp_path / "reference"
    folder.mkdir()
    yield from _fresh_warehouse(request, warehouse.target, folder, slot=1)


@pytest.fixture
def project(warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """Sample sources in a temp folder, an orders API serving them, and the ELT pointed at both."""
    with Project.started(warehouse, tmp_path, monkeypatch) as started:
        yield started

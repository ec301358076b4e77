"""dbt's own adapter conformance suite (dbt-tests-adapter), run with this project's macros and model config.

dbt-tests-adapter writes a small dbt project per test class (its `project` fixture) and runs dbt in this
process. Here that project also gets:

- this project's `macros/` folder (its view materialization, grants, schema names, hooks), copied in;
- this project's project-level config: every model and seed takes the writer lock and pins the session
  to UTC (the pre-hooks of dbt_project.yml), every model grants SELECT to the reader role (the marts'
  `grants`), and the project's `elt` dispatch namespace resolves in the test project.

So a class of the suite passes only if dbt behaves as dbt promises with what the project overrides. Each
class runs once per warehouse of ELT_TEST_WAREHOUSES (DuckDB and PostgreSQL): a DuckDB file per class,
or a database of its own on the session's PostgreSQL server, where the roles the grants classes read
(DBT_TEST_USER_1..3) and the reader role are created.

ELT_CONFORMANCE_MACROS picks the macros: unset, this project's; `stock`, none (dbt as installed, no
project config); or the path of another `macros/` folder (an older revision's), to compare.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# dbt's functional-test fixtures (`project`, `models`, `macros`, `project_config_update`, ...): a conftest
# below the top level may not declare pytest_plugins, so they are imported into this one.
from dbt.tests.fixtures.project import *  # noqa: F403
from dbt.tests.fixtures.project import write_project_files
from dbt.tests.util import write_file

PROJECT_DIR = Path(__file__).resolve().parents[2]
TEST_WAREHOUSES = os.environ.get("ELT_TEST_WAREHOUSES", "duckdb,postgres").split(",")
WAREHOUSES = [w for w in TEST_WAREHOUSES if w != "spark"]
# Spark's classes (test_spark_conformance.py) run in `make test-spark`, which installs Spark
collect_ignore = [] if "spark" in TEST_WAREHOUSES else ["test_spark_conformance.py"]
MACROS = os.environ.get("ELT_CONFORMANCE_MACROS", "")
STOCK = MACROS == "stock"
MACROS_DIR = None if STOCK else Path(MACROS) if MACROS else PROJECT_DIR / "macros"

# the project's hooks of every model and seed, and the marts' grant, as dbt_project.yml writes them
PROJECT_CONFIG = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
PRE_HOOKS = PROJECT_CONFIG["models"]["elt"]["+pre-hook"]
GRANTS = PROJECT_CONFIG["models"]["elt"]["marts"]["+grants"]
assert PROJECT_CONFIG["seeds"]["elt"]["+pre-hook"] == PRE_HOOKS  # the same hooks for seeds

TEST_USER_VARIABLES = ("DBT_TEST_USER_1", "DBT_TEST_USER_2", "DBT_TEST_USER_3")


@pytest.fixture(scope="session")
def conformance_postgres(postgres_server: dict[str, str]) -> Iterator[dict[str, str]]:
    """A database for the suite on the session's server, and the roles its grants classes use, with names
    of this session's own (roles belong to the whole server)."""
    import psycopg2

    suffix = uuid.uuid4().hex[:8]
    database = f"elt_conformance_{suffix}"
    roles = {name: f"{name.lower()}_{suffix}" for name in TEST_USER_VARIABLES}
    roles["ELT_READER_ROLE"] = f"elt_reader_{suffix}"
    admin = psycopg2.connect(
        host=postgres_server["PGHOST"],
        port=postgres_server.get("PGPORT", "5432"),
        user=postgres_server.get("PGUSER"),
        password=postgres_server.get("PGPASSWORD") or None,
        dbname=postgres_server.get("PGDATABASE", "postgres"),
    )
    admin.autocommit = True
    cursor = admin.cursor()
    cursor.execute(f'create database "{database}"')
    for role in roles.values():
        cursor.execute(f'create role "{role}" nologin')
    try:
        yield {**postgres_server, "PGDATABASE": database, **roles}
    finally:
        cursor.execute(f'drop database if exists "{database}" with (force)')
        for role in roles.values():
            cursor.execute(f'drop role if exists "{role}"')
        admin.close()


@pytest.fixture(scope="class", params=WAREHOUSES)
def dbt_profile_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The warehouse of one class: profiles.yml's output for it, as this project's profile sets it (Spark:
    the session's local Thrift server, emptied)."""
    if request.param == "duckdb":
        path = tmp_path_factory.mktemp("conformance") / "conformance.duckdb"
        return {"type": "duckdb", "path": str(path), "threads": 1, "settings": {"TimeZone": "UTC"}}
    if request.param == "spark":
        env = request.getfixturevalue("spark_servers").emptied()
        return {
            "type": "spark",
            "method": "thrift",
            "host": env["ELT_SPARK_HOST"],
            "port": int(env["ELT_SPARK_PORT"]),
            "threads": 1,
            "connect_retries": 3,
            "connect_timeout": 5,
            "poll_interval": 1,
        }
    server = request.getfixturevalue("conformance_postgres")
    return {
        "type": "postgres",
        "host": server["PGHOST"],
        "port": int(server.get("PGPORT", "5432")),
        "user": server["PGUSER"],
        "pass": server.get("PGPASSWORD", ""),
        "dbname": server["PGDATABASE"],
        "threads": 2,
    }


@pytest.fixture(scope="class")
def project_root(tmpdir_factory, dbt_profile_target):
    """dbt's fixture of the same name, once per warehouse of a class (dbt's would be shared by both)."""
    return tmpdir_factory.mktemp("project")


@pytest.fixture(scope="class")
def profiles_root(tmpdir_factory, dbt_profile_target):
    return tmpdir_factory.mktemp("profile")


@pytest.fixture(scope="class")
def conformance_environment(request: pytest.FixtureRequest, dbt_profile_target: dict[str, Any]) -> Iterator[None]:
    """The variables dbt's fixtures and this project's config read, for one class, restored after it: the
    test roles and the reader role (PostgreSQL), and none of the session's DBT_TARGET_PATH (the suite reads
    target/ in its own project folder)."""
    saved = {name: os.environ.get(name) for name in (*TEST_USER_VARIABLES, "ELT_READER_ROLE", "DBT_TARGET_PATH")}
    os.environ.pop("DBT_TARGET_PATH", None)
    if dbt_profile_target["type"] == "postgres":
        server = request.getfixturevalue("conformance_postgres")
        for name in (*TEST_USER_VARIABLES, "ELT_READER_ROLE"):
            os.environ[name] = server[name]
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="class")
def logs_dir(request: pytest.FixtureRequest, prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dbt's logs of a class in a temporary folder (dbt's fixture writes them into the repository and then
    unsets the session's DBT_LOG_PATH)."""
    saved = os.environ.get("DBT_LOG_PATH")
    folder = str(tmp_path_factory.mktemp("dbt-logs") / prefix)
    os.environ["DBT_LOG_PATH"] = folder
    yield folder
    if saved is None:
        os.environ.pop("DBT_LOG_PATH", None)
    else:
        os.environ["DBT_LOG_PATH"] = saved


def with_project_config(config: dict[str, Any]) -> dict[str, Any]:
    """A test project's dbt_project.yml with this project's hooks, grants and dispatch added."""
    if STOCK:
        return config
    config = dict(config)
    models, seeds = dict(config.get("models") or {}), dict(config.get("seeds") or {})
    models["+pre-hook"] = [*PRE_HOOKS, *as_list(models.get("+pre-hook"))]
    models.setdefault("+grants", GRANTS)
    seeds["+pre-hook"] = [*PRE_HOOKS, *as_list(seeds.get("+pre-hook"))]
    config["models"], config["seeds"] = models, seeds
    # the project's macros dispatch in the `elt` namespace: the test project is that namespace here
    dispatch = list(config.get("dispatch") or [])
    dispatch.append({"macro_namespace": "elt", "search_order": [config["name"]]})
    config["dispatch"] = dispatch
    # vars the project's macros read
    config["vars"] = {**{k: v for k, v in PROJECT_CONFIG["vars"].items()}, **(config.get("vars") or {})}
    return config


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@pytest.fixture(scope="class")
def dbt_project_yml(project_root, project_config_update, conformance_environment) -> dict[str, Any]:
    """dbt's fixture of the same name, with the project's config merged in."""
    config: dict[str, Any] = {"name": "test", "profile": "test", "flags": {"send_anonymous_usage_stats": False}}
    if isinstance(project_config_update, str):
        config.update(yaml.safe_load(project_config_update))
    elif project_config_update:
        config.update(project_config_update)
    config = with_project_config(config)
    write_file(yaml.safe_dump(config), project_root, "dbt_project.yml")
    return config


@pytest.fixture(scope="class")
def project_files(
    project_root,
    models,
    macros,
    snapshots,
    properties,
    seeds,
    tests,
    analyses,
    functions,
    selectors_yml,
    dependencies_yml,
    packages_yml,
    dbt_project_yml,
) -> None:
    """dbt's fixture of the same name, and this project's macros in `macros/elt/`."""
    write_project_files(project_root, "models", {**models, **properties})
    write_project_files(project_root, "macros", macros)
    write_project_files(project_root, "snapshots", snapshots)
    write_project_files(project_root, "seeds", seeds)
    write_project_files(project_root, "tests", tests)
    write_project_files(project_root, "analyses", analyses)
    write_project_files(project_root, "functions", functions)
    if MACROS_DIR is not None:
        shutil.copytree(MACROS_DIR, Path(project_root) / "macros" / "elt")

"""Secrets are never written anywhere: the ELT runs once successfully and fails in several ways with known
secret values — the API token (right and wrong: 401), the app database's password inside
`SOURCES__APP_DB__CREDENTIALS` (a PostgreSQL app database that checks it: unreachable, wrong password,
an unparseable URL) and, on PostgreSQL, the warehouse's `PGPASSWORD` (right and wrong, through `elt run`
and a plain `dbt build`) — then everything it wrote is searched for them: stdout and stderr, dlt's
working folder (ELT_STATE_DIR) and data folder (DLT_DATA_DIR), dbt's target/ and logs/
(DBT_TARGET_PATH, DBT_LOG_PATH), any file of the project folder written meanwhile, the DuckDB file, and
every column of every table and view in raw_*, staging, analytics, quarantine and ops (dlt's compressed
pipeline state decoded). Zero hits, and the search is shown to find a planted secret.

The throwaway server trusts every local connection, so the test makes it check the passwords of its two
login roles (scram-sha-256 lines at the top of pg_hba.conf, removed afterwards).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from loaders.core.settings import Settings
from loaders.simulate import SimulationConfig, generate
from loaders.warehouse import connect
from tests.support.postgres import free_port
from tests.support.project import Project

pytestmark = pytest.mark.warehouses("postgres")

PROJECT_DIR = Path(__file__).resolve().parents[2]
WORLD = SimulationConfig(seed=53, customers=20, orders_per_day=30, invalid_rate=0.1, damaged_rate=0.05)
SCHEMAS = "(substr(table_schema, 1, 4) = 'raw_' or table_schema in ('staging', 'analytics', 'quarantine', 'ops'))"
APP_TABLES = {
    "customers": ("id", "email", "full_name", "country", "created_at", "updated_at", "deleted_at"),
    "products": ("sku", "name", "category", "list_price", "currency", "active", "updated_at"),
}


def secret(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


@dataclass
class Secrets:
    token: str
    wrong_token: str = field(default_factory=lambda: secret("wrong-token"))
    app_password: str = field(default_factory=lambda: secret("app-password"))
    wrong_app_password: str = field(default_factory=lambda: secret("wrong-app-password"))
    warehouse_password: str = field(default_factory=lambda: secret("warehouse-password"))
    wrong_warehouse_password: str = field(default_factory=lambda: secret("wrong-warehouse-password"))

    def values(self) -> list[str]:
        return list(vars(self).values())


def admin_connection(server: dict[str, str], dbname: str | None = None) -> Any:
    conn = psycopg2.connect(
        host=server["PGHOST"],
        port=server.get("PGPORT", "5432"),
        user=server.get("PGUSER"),
        password=server.get("PGPASSWORD") or None,
        dbname=dbname or server.get("PGDATABASE", "postgres"),
    )
    conn.autocommit = True
    return conn


def refuses(server: dict[str, str], user: str, password: str) -> bool:
    try:
        psycopg2.connect(
            host=server["PGHOST"], port=server.get("PGPORT", "5432"), user=user, password=password, dbname="postgres"
        ).close()
    except psycopg2.OperationalError:
        return True
    return False


@contextlib.contextmanager
def passwords_checked(server: dict[str, str], roles: list[str], password: str) -> Iterator[None]:
    """Make the server check these roles' passwords (the throwaway one trusts everyone)."""
    if all(refuses(server, role, "not-" + password) for role in roles):
        yield  # a real server does already
        return
    admin = admin_connection(server)
    cursor = admin.cursor()
    cursor.execute("show hba_file")
    hba = Path(cursor.fetchone()[0])
    if not os.access(hba, os.W_OK):
        pytest.fail(f"the server at {server['PGHOST']} trusts {roles} and its {hba} is not writable from here")
    original = hba.read_text()
    rules = "".join(f"host all {role} all scram-sha-256\nlocal all {role} scram-sha-256\n" for role in roles)
    hba.write_text(rules + original)
    try:
        cursor.execute("select pg_reload_conf()")
        deadline = time.monotonic() + 10
        while not all(refuses(server, role, "not-" + password) for role in roles):
            assert time.monotonic() < deadline, "the server still accepts a wrong password"
            time.sleep(0.1)
        yield
    finally:
        hba.write_text(original)
        cursor.execute("select pg_reload_conf()")
        admin.close()


@dataclass
class Deployment:
    """The ELT's environment with the secrets in it, and every place it may write."""

    project: Project
    secrets: Secrets
    env: dict[str, str]
    app_url: str
    warehouse_login: str | None
    folders: dict[str, Path]
    outputs: list[str] = field(default_factory=list)

    def elt(self, *args: str, expect: int | None = None, **overrides: str) -> str:
        return self.run([sys.executable, "-m", "loaders.cli", *args], expect, overrides)

    def dbt(self, *args: str, expect: int | None = None, **overrides: str) -> str:
        env = {name: value for name, value in overrides.items()}
        return self.run([str(Path(sys.executable).with_name("dbt")), *args], expect, env)

    def run(self, command: list[str], expect: int | None, overrides: dict[str, str]) -> str:
        proc = subprocess.run(
            command,
            cwd=PROJECT_DIR,
            env={**self.env, **overrides},
            capture_output=True,
            text=True,
            timeout=900,
        )
        self.outputs += [proc.stdout, proc.stderr]
        if expect == 0:
            assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        elif expect is not None:
            assert proc.returncode != 0, proc.stdout[-2000:]
        return proc.stdout + proc.stderr


@pytest.fixture
def deployment(project: Project, postgres_server: dict[str, str], tmp_path: Path) -> Iterator[Deployment]:
    generate(project.root, WORLD, through_day=2)
    secrets = Secrets(token=project.token)
    suffix = uuid.uuid4().hex[:8]
    app_login, app_db = f"app_{suffix}", f"shop_{suffix}"
    warehouse_login = f"warehouse_{suffix}" if project.warehouse.target == "postgres" else None
    admin = admin_connection(postgres_server)
    cursor = admin.cursor()
    cursor.execute(f"create role {app_login} login password %s", (secrets.app_password,))
    cursor.execute(f'create database "{app_db}"')
    copy_app_db(postgres_server, project.root / "app.db", app_db, app_login)
    logins = [app_login]
    if warehouse_login:
        cursor.execute(f"create role {warehouse_login} login password %s", (secrets.warehouse_password,))
        cursor.execute(f'grant create on database "{project.settings.postgres.dbname}" to {warehouse_login}')
        logins.append(warehouse_login)
    folders = {
        name: tmp_path / name
        for name in ("dbt-target", "dbt-logs", "dlt-data")  # ELT_STATE_DIR is the project's, in tmp_path too
    }
    host, port = postgres_server["PGHOST"], postgres_server.get("PGPORT", "5432")
    app_url = f"postgresql+psycopg2://{app_login}:{secrets.app_password}@{host}:{port}/{app_db}"
    env = {
        **os.environ,
        "DBT_TARGET_PATH": str(folders["dbt-target"]),
        "DBT_LOG_PATH": str(folders["dbt-logs"]),
        "DLT_DATA_DIR": str(folders["dlt-data"]),
        "SOURCES__APP_DB__CREDENTIALS": app_url,
        "SOURCES__APP_DB__SCHEMA": "shop",
    }
    env.pop("DBT_PROFILES_DIR", None)
    if warehouse_login:
        env.update(PGUSER=warehouse_login, PGPASSWORD=secrets.warehouse_password)
    folders["elt-state"] = Path(env["ELT_STATE_DIR"])
    try:
        with passwords_checked(postgres_server, logins, secrets.app_password):
            yield Deployment(project, secrets, env, app_url, warehouse_login, folders)
    finally:
        cursor.execute("select pg_terminate_backend(pid) from pg_stat_activity where usename = any(%s)", (logins,))
        cursor.execute(f'drop database if exists "{app_db}" with (force)')
        if warehouse_login:
            with contextlib.closing(admin_connection(postgres_server, project.settings.postgres.dbname)) as db:
                db.cursor().execute(f"drop owned by {warehouse_login} cascade")
        for login in logins:
            cursor.execute(f"drop role if exists {login}")
        admin.close()


def copy_app_db(server: dict[str, str], sqlite_path: Path, dbname: str, login: str) -> None:
    """The simulator's app database, moved to PostgreSQL (values as text, as the loader reads them)."""
    with contextlib.closing(admin_connection(server, dbname)) as conn, sqlite3.connect(sqlite_path) as source:
        cursor = conn.cursor()
        cursor.execute("create schema shop")
        for table, columns in APP_TABLES.items():
            typed = ", ".join(f"{column} text" for column in columns[1:])
            cursor.execute(f"create table shop.{table} ({columns[0]} text primary key, {typed})")
            rows = source.execute(f"select {', '.join(columns)} from {table}").fetchall()
            for row in rows:
                cursor.execute(
                    f"insert into shop.{table} values ({', '.join(['%s'] * len(columns))})",
                    [None if value is None else str(value) for value in row],
                )
        cursor.execute(f"grant usage on schema shop to {login}; grant select on all tables in schema shop to {login}")


# -- the search ----------------------------------------------------------------------------------------
def file_hits(paths: list[Path], needles: list[str]) -> tuple[list[str], int]:
    hits, searched = [], 0
    for path in paths:
        data = path.read_bytes()
        searched += 1
        hits += [f"{path}: {needle}" for needle in needles if needle.encode() in data]
    return hits, searched


def written_files(deployment: Deployment, since: float) -> list[Path]:
    files = [path for folder in deployment.folders.values() for path in folder.rglob("*") if path.is_file()]
    for path in PROJECT_DIR.rglob("*"):  # anything that landed in the project folder during the runs
        parts = path.relative_to(PROJECT_DIR).parts
        if parts[0] in (".git", ".venv") or not path.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime >= since:
                files.append(path)
    for home in (Path.home() / ".dlt", Path.home() / ".dbt"):
        files += [path for path in home.rglob("*") if path.is_file() and path.stat().st_mtime >= since]
    if deployment.project.warehouse.target == "duckdb":
        database = deployment.project.settings.duckdb_path
        files += [path for path in (database, Path(f"{database}.wal")) if path.exists()]
    return files


def warehouse_hits(settings: Settings, needles: list[str]) -> tuple[list[str], int, int]:
    """Every column of every table and view, cast to text; dlt's pipeline state decompressed."""
    from dlt.common.versioned_state import decompress_state

    with connect(settings) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            f"where {SCHEMAS} order by 1, 2, ordinal_position"
        )
        columns: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in cursor.fetchall():
            columns.setdefault((schema, table), []).append(column)
        hits = []
        for (schema, table), names in columns.items():
            matches = " or ".join(
                f"""cast("{name}" as varchar) like '%{needle}%'""" for name in names for needle in needles
            )
            cursor.execute(f'select count(*) from "{schema}"."{table}" where {matches}')
            if cursor.fetchone()[0]:
                hits.append(f"{schema}.{table}")
            if table == "_dlt_pipeline_state":
                cursor.execute(f'select state from "{schema}"."{table}"')
                for (state,) in cursor.fetchall():
                    text = str(decompress_state(state))
                    hits += [f"{schema}.{table} (decoded state): {n}" for n in needles if n in text]
    return hits, len(columns), sum(len(names) for names in columns.values())


def search(deployment: Deployment, since: float, needles: list[str]) -> list[str]:
    hits = [f"output: {needle}" for output in deployment.outputs for needle in needles if needle in output]
    found, _ = file_hits(written_files(deployment, since), needles)
    tables, _, _ = warehouse_hits(deployment.project.settings, needles)
    return hits + found + tables


# -- the test ------------------------------------------------------------------------------------------
def test_no_secret_is_written_anywhere(deployment: Deployment) -> None:
    started = time.time() - 1
    secrets, project = deployment.secrets, deployment.project
    closed = f"127.0.0.1:{free_port()}"
    host_port = deployment.app_url.split("@", 1)[1].split("/", 1)[0]

    # once successfully, then in every way we can think of
    deployment.elt("run", expect=0)
    out = deployment.elt("run", expect=1, SOURCES__SHOP_API__TOKEN=secrets.wrong_token)
    assert "shop_api FAILED" in out and "401" in out, out[-2000:]
    out = deployment.elt(
        "load", "app_db", expect=1, SOURCES__APP_DB__CREDENTIALS=deployment.app_url.replace(host_port, closed)
    )
    assert "app_db FAILED" in out and "cannot reach" in out, out[-2000:]
    out = deployment.elt(
        "load",
        "app_db",
        expect=1,
        SOURCES__APP_DB__CREDENTIALS=deployment.app_url.replace(secrets.app_password, secrets.wrong_app_password),
    )
    assert "password authentication failed" in out, out[-2000:]
    unparseable = deployment.app_url.replace(host_port, "127.0.0.1:not-a-port")
    out = deployment.elt("load", "app_db", expect=1, SOURCES__APP_DB__CREDENTIALS=unparseable)
    assert "cannot be parsed" in out, out[-2000:]
    if deployment.warehouse_login:
        out = deployment.elt("run", expect=1, PGPASSWORD=secrets.wrong_warehouse_password)
        assert "password authentication failed" in out, out[-2000:]
        out = deployment.dbt("build", expect=1, PGPASSWORD=secrets.wrong_warehouse_password)
        assert "password authentication failed" in out, out[-2000:]
    assert project.scalar("select count(*) from analytics.orders") > 0  # the successful run did build

    hits = search(deployment, started, secrets.values())
    assert hits == []

    # the search is not blind: it covered what was written, and it finds a secret that is there
    files = written_files(deployment, started)
    names = {path.name for path in files}
    assert {"dbt.log", "run_results.json", "manifest.json", "state.json"} <= names, sorted(names)
    _, tables, columns = warehouse_hits(project.settings, secrets.values())
    assert tables >= 30 and columns >= 200, (tables, columns)
    canary = secret("canary")
    (deployment.folders["dbt-logs"] / "canary.log").write_text(f"... {canary} ...")
    with connect(project.settings, read_only=False) as conn:
        conn.cursor().execute(f"create table ops.canary as select 'x{canary}y' as note")
    planted = search(deployment, started, [canary])
    assert any("canary.log" in hit for hit in planted) and "ops.canary" in planted, planted

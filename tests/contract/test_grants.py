"""Least privilege (PostgreSQL): `elt grants` makes a loader, a transformer and a reader role, idempotently;
the ELT runs with the loads as a login of the loader and dbt as a login of the transformer; the reader
keeps SELECT on the canonical tables through a `--full-refresh` (even while it runs) and can do nothing
else; the loader cannot read what dbt built, the transformer cannot write raw.

The role names come from ELT_LOADER_ROLE / ELT_TRANSFORMER_ROLE / ELT_READER_ROLE, unique per test here
(roles belong to the whole server). On DuckDB `elt grants` says there are no roles and exits 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from loaders.ops.grants import Roles
from loaders.simulate import SimulationConfig, generate
from tests.support.project import Project
from tests.support.readers import ReaderLoop, connect_kwargs

PROJECT_DIR = Path(__file__).resolve().parents[2]
WORLD = SimulationConfig(seed=41, customers=30, orders_per_day=50, invalid_rate=0.1, damaged_rate=0.05)
PERMISSION_DENIED = "permission denied"


@dataclass(frozen=True)
class Logins:
    """One login user per role, with a password (the throwaway server trusts it; a real one checks it)."""

    loader: str
    transformer: str
    reader: str
    password: str


@pytest.fixture
def roles(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Roles, Logins]]:
    suffix = uuid.uuid4().hex[:8]
    roles = Roles(f"elt_loader_{suffix}", f"elt_transformer_{suffix}", f"elt_reader_{suffix}")
    logins = Logins(f"loader_{suffix}", f"transformer_{suffix}", f"reader_{suffix}", uuid.uuid4().hex)
    monkeypatch.setenv("ELT_LOADER_ROLE", roles.loader)
    monkeypatch.setenv("ELT_TRANSFORMER_ROLE", roles.transformer)
    monkeypatch.setenv("ELT_READER_ROLE", roles.reader)  # dbt's grants config reads it too
    admin = psycopg2.connect(**connect_kwargs(project.settings))
    admin.autocommit = True
    for login in (logins.loader, logins.transformer, logins.reader):
        admin.cursor().execute(f"create role {login} login password '{logins.password}'")
    try:
        yield roles, logins
    finally:
        everyone = [roles.loader, roles.transformer, roles.reader, logins.loader, logins.transformer, logins.reader]
        cursor = admin.cursor()
        cursor.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where usename = any(%s)",
            ([logins.loader, logins.transformer, logins.reader],),
        )
        cursor.execute("select quote_ident(rolname) from pg_roles where rolname = any(%s)", (everyone,))
        existing = [name for (name,) in cursor.fetchall()]
        for name in existing:  # one at a time: PostgreSQL 15 trips over default privileges between two of them
            cursor.execute(f"drop owned by {name} cascade")
        for name in existing:
            cursor.execute(f"drop role {name}")
        admin.close()


def elt(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loaders.cli", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def grants(logins: Logins) -> subprocess.CompletedProcess[str]:
    return elt(
        "grants",
        "--loader-user",
        logins.loader,
        "--transformer-user",
        logins.transformer,
        "--reader-user",
        logins.reader,
    )


def as_login(login: str, logins: Logins) -> dict[str, str]:
    return {"PGUSER": login, "PGPASSWORD": logins.password}


def privileges(project: Project, roles: Roles, logins: Logins) -> list[tuple[Any, ...]]:
    """Every ACL, owner, default privilege, membership and role setting the roles are part of."""
    names = [roles.loader, roles.transformer, roles.reader, logins.loader, logins.transformer, logins.reader]
    listed = ", ".join(f"'{name}'" for name in names)
    return project.query(
        f"""
        select 'database', datname, coalesce(datacl::text, ''), datdba::regrole::text
        from pg_database where datname = current_database()
        union all
        select 'schema', nspname, coalesce(nspacl::text, ''), nspowner::regrole::text
        from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema'
        union all
        select 'relation', c.oid::regclass::text, coalesce(c.relacl::text, ''), c.relowner::regrole::text
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema' and c.relkind in ('r', 'v', 'm', 'p')
        union all
        select 'routine', p.oid::regprocedure::text, coalesce(p.proacl::text, ''), p.proowner::regrole::text
        from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace where n.nspname = 'ops'
        union all
        select 'default', coalesce(defaclnamespace::regnamespace::text, '') || ' ' || defaclobjtype::text,
            defaclacl::text, defaclrole::regrole::text
        from pg_default_acl
        union all
        select 'member', m.member::regrole::text, m.roleid::regrole::text, ''
        from pg_auth_members as m where m.member::regrole::text in ({listed})
        union all
        select 'setting', s.setrole::regrole::text, array_to_string(s.setconfig, ','), ''
        from pg_db_role_setting as s where s.setrole::regrole::text in ({listed})
        union all
        select 'role', rolname, rolcanlogin::text, ''
        from pg_roles where rolname in ({listed})
        order by 1, 2, 3
        """
    )


def denied(settings_kwargs: dict[str, Any], statement: str) -> str:
    """The error `statement` fails with (the test fails if it succeeds)."""
    conn = psycopg2.connect(**settings_kwargs)
    conn.autocommit = True
    try:
        conn.cursor().execute(statement)
    except psycopg2.Error as exc:
        return exc.pgerror or str(exc)
    finally:
        conn.close()
    raise AssertionError(f"allowed: {statement} as {settings_kwargs['user']}")


def scalar_as(settings_kwargs: dict[str, Any], query: str) -> Any:
    conn = psycopg2.connect(**settings_kwargs)
    try:
        cursor = conn.cursor()
        cursor.execute(query)
        return cursor.fetchone()[0]
    finally:
        conn.close()


def owner(project: Project, relation: str) -> str:
    return project.scalar(f"select relowner::regrole::text from pg_class where oid = '{relation}'::regclass")


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


postgres_only = pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)


@postgres_only
def test_each_role_does_its_job_and_nothing_else(project: Project, roles: tuple[Roles, Logins]) -> None:
    role, login = roles
    generate(project.root, WORLD, through_day=1)

    # idempotent: the second run changes nothing
    first = grants(login)
    assert_ok(first)
    assert f"created {role.loader}, {role.transformer}, {role.reader}" in first.stdout, first.stdout
    after_first = privileges(project, role, login)
    second = grants(login)
    assert_ok(second)
    assert "created none" in second.stdout, second.stdout
    assert privileges(project, role, login) == after_first

    # the first load creates the raw schemas and tables as the loader; dbt reads them as the transformer
    assert_ok(elt("load", **as_login(login.loader, login)))
    assert_ok(elt("build", **as_login(login.transformer, login)))
    # what each login created belongs to its role, so any other login of the role can rebuild it
    assert owner(project, "raw_shop_api.orders") == role.loader
    assert owner(project, "analytics.orders") == role.transformer
    assert owner(project, "ops.dbt_consumed") == role.transformer

    # a second day: new raw rows (and tables a first load had no need for) readable through the
    # loader's default privileges, without running `elt grants` again
    generate(project.root, WORLD, through_day=2)
    assert_ok(elt("load", **as_login(login.loader, login)))
    assert_ok(elt("build", **as_login(login.transformer, login)))

    reader = connect_kwargs(project.settings, login.reader, login.password)
    before = project.scalar("select 'analytics.orders'::regclass::oid::bigint")
    with ReaderLoop(reader, ["analytics.orders"]) as loop:
        time.sleep(0.3)
        started = time.time()
        assert_ok(elt("build", "--full-refresh", **as_login(login.transformer, login)))
        finished = time.time()
        time.sleep(0.3)
    # the table was replaced, and the reader could read it before, during and after
    assert project.scalar("select 'analytics.orders'::regclass::oid::bigint") != before
    assert loop.failed() == [], loop.failed()[:5]
    assert loop.empty() == []
    assert len(loop.during("analytics.orders", started, finished)) >= 20
    assert scalar_as(reader, "select count(*) from analytics.orders") == project.scalar(
        "select count(*) from analytics.orders"
    )

    # the reader reads analytics and nothing else, and writes nothing
    assert PERMISSION_DENIED in denied(reader, "select count(*) from raw_shop_api.orders")
    assert PERMISSION_DENIED in denied(reader, "insert into analytics.orders (order_id) values ('x')")
    assert PERMISSION_DENIED in denied(reader, "delete from analytics.orders")
    for relation in ("quarantine.orders", "staging.stg_shop_api__orders", "ops.dbt_consumed"):
        assert PERMISSION_DENIED in denied(reader, f"select count(*) from {relation}")
    # the loader does not read what dbt built; the transformer reads raw but does not write it
    loader = connect_kwargs(project.settings, login.loader, login.password)
    transformer = connect_kwargs(project.settings, login.transformer, login.password)
    assert PERMISSION_DENIED in denied(loader, "select count(*) from analytics.orders")
    assert scalar_as(transformer, "select count(*) from raw_shop_api.orders") > 0
    assert PERMISSION_DENIED in denied(transformer, "delete from raw_shop_api.orders")

    # once more on the built warehouse: still idempotent, nothing to hand over
    third = grants(login)
    assert_ok(third)
    assert "objects handed to their writer 0" in third.stdout, third.stdout


@postgres_only
def test_a_warehouse_built_before_the_roles_is_handed_over(project: Project, roles: tuple[Roles, Logins]) -> None:
    """A warehouse first built by the administrator: `elt grants` gives every raw object to the loader and
    every dbt object to the transformer, and grants the reader the tables already built."""
    role, login = roles
    generate(project.root, WORLD, through_day=1)
    project.run()  # as the administrator, before any role exists

    proc = grants(login)
    assert_ok(proc)
    assert owner(project, "raw_shop_api.orders") == role.loader
    assert owner(project, "analytics.orders") == role.transformer
    reader = connect_kwargs(project.settings, login.reader, login.password)
    assert scalar_as(reader, "select count(*) from analytics.orders") > 0

    generate(project.root, WORLD, through_day=2)
    assert_ok(elt("load", **as_login(login.loader, login)))
    assert_ok(elt("build", **as_login(login.transformer, login)))
    assert scalar_as(reader, "select count(*) from analytics.orders") == project.scalar(
        "select count(*) from analytics.orders"
    )
    assert PERMISSION_DENIED in denied(reader, "select count(*) from raw_shop_api.orders")


@postgres_only
def test_grants_without_the_right_to_grant_fail_clearly(project: Project, roles: tuple[Roles, Logins]) -> None:
    role, login = roles
    proc = elt("grants", **as_login(login.reader, login))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert proc.stdout.startswith("elt grants FAILED: ") and PERMISSION_DENIED in proc.stdout, proc.stdout
    assert project.scalar(f"select count(*) from pg_roles where rolname = '{role.loader}'") == 0  # nothing half-done


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_duckdb_has_no_roles(warehouse) -> None:
    proc = elt("grants", **warehouse.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "duckdb has no roles" in proc.stdout, proc.stdout

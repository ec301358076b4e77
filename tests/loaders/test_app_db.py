"""The app database loader reads the contract's tables from any SQLAlchemy URL: the SQLite file of the
embedded default and a PostgreSQL schema in production, values kept as stored."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg2
import pytest

from tests.contract.records import customer

DDL = """
create schema shop;
create table shop.customers(id text primary key, email text, full_name text, country text,
    created_at timestamp, updated_at timestamp, deleted_at timestamp null);
create table shop.products(sku text primary key, name text, category text, list_price numeric(12,2),
    currency text, active boolean, updated_at timestamp);
insert into shop.customers values
    ('c1', 'ann@example.com', 'Änn Ø', 'DE', '2024-03-01 08:00', '2024-03-01 09:00', null),
    ('c2', 'bad', 'Bob', 'XX', '2024-03-01 08:00', '2024-03-01 07:00', '2024-03-02 00:00');
insert into shop.products values ('SKU-1', 'Mug', 'kitchen', 19.90, 'EUR', true, '2024-03-01 09:00');
"""


@pytest.fixture
def postgres_app_db(postgres_server):
    name = f"shop_{uuid.uuid4().hex[:10]}"
    connect = {
        "host": postgres_server["PGHOST"],
        "port": postgres_server.get("PGPORT", "5432"),
        "user": postgres_server.get("PGUSER"),
        "password": postgres_server.get("PGPASSWORD") or None,
    }
    admin = psycopg2.connect(dbname=postgres_server.get("PGDATABASE", "postgres"), **connect)
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    with psycopg2.connect(dbname=name, **connect) as conn:
        conn.cursor().execute(DDL)
    password = f":{connect['password']}" if connect["password"] else ""
    yield f"postgresql+psycopg2://{connect['user']}{password}@{connect['host']}:{connect['port']}/{name}"
    admin.cursor().execute(f'drop database if exists "{name}" with (force)')
    admin.close()


def test_postgresql_source_schema_lands_values_as_stored(project, postgres_app_db, monkeypatch) -> None:
    monkeypatch.setenv("SOURCES__APP_DB__CREDENTIALS", postgres_app_db)
    monkeypatch.setenv("SOURCES__APP_DB__SCHEMA", "shop")
    project.load()
    project.build()

    raw = project.query("select id, full_name, updated_at, deleted_at from raw_app_db.customers order by id")
    assert raw == [
        ("c1", "Änn Ø", "2024-03-01 09:00:00", None),
        ("c2", "Bob", "2024-03-01 07:00:00", "2024-03-02 00:00:00"),
    ]
    assert project.canonical("products")[("SKU-1",)][3] == Decimal("19.90")
    assert project.canonical("products")[("SKU-1",)][5] is True
    assert project.open_quarantine("customers") == {
        "c2": ("2024-03-01 07:00:00", "invalid_email,unknown_country,updated_before_created")
    }


def test_sqlite_source_rereads_only_changed_rows(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.app_db.upsert_customer(**customer("c2", updated_at="2024-03-05 09:00:00"))
    first = {o.source: o for o in project.load()}["app_db"]
    project.app_db.upsert_customer(**customer("c3", updated_at="2024-03-05 10:00:00"))
    second = {o.source: o for o in project.load()}["app_db"]

    assert first.landed == 2
    # c1 is more than the one-hour commit lag behind the cursor: not read again; c2 is re-read, and as raw
    # holds it exactly it is left out of the load (unchanged); c3 lands
    assert (second.landed, second.unchanged) == (1, 1)
    assert project.scalar("select count(*) from raw_app_db.customers") == 3


def test_rows_without_updated_at_are_read_but_taken_once(project) -> None:
    """The query reads the rows whose `updated_at` is NULL every time (nothing places them on the cursor);
    the loader takes each once and skips it unchanged after; a changed one is taken again."""
    project.app_db.upsert_customer(**customer("c1"))
    project.app_db.upsert_customer(**customer("c_null", updated_at=None))
    first = {o.source: o for o in project.load("app_db")}["app_db"]
    second = {o.source: o for o in project.load("app_db")}["app_db"]
    project.app_db.upsert_customer(**customer("c_null", updated_at=None, country="FR"))
    third = {o.source: o for o in project.load("app_db")}["app_db"]

    # c1 is re-read within the commit lag on every run; c_null only when it changed
    assert (first.extracted, second.extracted, third.extracted) == (2, 1, 2)
    assert project.query("select country from raw_app_db.customers where id = 'c_null'") == [("FR",)]

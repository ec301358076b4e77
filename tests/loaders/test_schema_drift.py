"""Schema drift at the sources, on both warehouses: a field or column the source adds lands in `_record`
(never as a raw column), a field whose values change type between loads changes no raw column's type,
and neither breaks a load or a dbt build; a column that does appear in raw reaches no model unasked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from loaders.simulate.stores import deliver_file, payments_dir
from loaders.warehouse import connect
from tests.contract.records import customer, delivered, order, payment
from tests.support.project import Project

pytestmark = pytest.mark.warehouses("postgres")

SQL_NAME = "'; drop table x; --"


def columns(project: Project, schema: str, table: str) -> list[tuple[str, str]]:
    return project.query(
        "select column_name, data_type from information_schema.columns"
        f" where table_schema = '{schema}' and table_name = '{table}' order by column_name"
    )


def raw_and_modelled_columns(project: Project) -> dict[str, list[tuple[str, str]]]:
    tables = [
        ("raw_shop_api", "orders"),
        ("raw_app_db", "customers"),
        ("raw_payments_files", "payments"),
        ("staging", "stg_shop_api__orders"),
        ("staging", "stg_app_db__customers"),
        ("staging", "stg_payments_files__payments"),
        ("analytics", "orders"),
        ("analytics", "customers"),
        ("analytics", "payments"),
    ]
    return {f"{schema}.{table}": columns(project, schema, table) for schema, table in tables}


def latest_record(project: Project, table: str, key: str, value: str) -> dict[str, Any]:
    rows = project.query(
        f"select _record from {table} where {key} = '{value}' order by _version_at desc, _version desc"
    )
    return json.loads(rows[0][0])


def deliver_csv(project: Project, name: str, header: list[str], rows: list[list[Any]], day: int) -> None:
    lines = [",".join(header), *(",".join(str(v) for v in row) for row in rows)]
    deliver_file(payments_dir(project.root) / name, ("\n".join(lines) + "\n").encode(), delivered(day))


def test_new_fields_and_columns_land_in_record_and_break_no_model(project: Project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.deliver("payments_20240301_01.csv", [payment("p1")], delivered(2))
    project.run()
    before = raw_and_modelled_columns(project)

    # the API adds a field; the database a column (one with a SQL-looking name too); the CSVs a column
    project.api_store.add(order("o1", updated_at="2024-03-01T13:00:00Z", gift_wrap={"paper": "red"}))
    with project.app_db.connect() as conn:
        conn.execute("alter table customers add column loyalty_tier text")
        conn.execute(f'alter table customers add column "{SQL_NAME}" integer')
        conn.execute(
            f"""insert or replace into customers (id, email, full_name, country, created_at, updated_at,
                loyalty_tier, "{SQL_NAME}") values
                ('c1', 'c1@example.com', 'C1', 'DE', '2024-03-01 08:00:00', '2024-03-01 10:00:00', 'gold', 7)"""
        )
    header = ["payment_id", "order_id", "amount", "currency", "method", "status", "paid_at", "updated_at", "note"]
    deliver_csv(project, "payments_20240302_01.csv", header, [[*payment("p2"), "first payment"]], 3)
    project.run()

    assert raw_and_modelled_columns(project) == before  # no new raw column, no model changed shape
    assert latest_record(project, "raw_shop_api.orders", "id", "o1")["gift_wrap"] == {"paper": "red"}
    record = latest_record(project, "raw_app_db.customers", "id", "c1")
    assert record["loyalty_tier"] == "gold" and record[SQL_NAME] == "7"
    assert latest_record(project, "raw_payments_files.payments", "payment_id", "p2")["note"] == "first payment"
    assert set(project.canonical("orders")) == {("o1",)} and set(project.canonical("payments")) == {("p1",), ("p2",)}
    assert project.canonical("customers")[("c1",)][5] == datetime(2024, 3, 1, 10, tzinfo=UTC)  # its new version


def test_values_that_change_type_between_loads_change_no_column(project: Project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    item = {"line": 1, "sku": "S", "quantity": 1, "unit_price": "1.00"}
    loads: list[dict[str, dict[str, Any]]] = [  # per load, the new version of each order
        {"o1": {"status": "paid", "gift_wrap": "yes", "items": [item]}, "o2": {"status": "paid", "gift_wrap": 1}},
        {"o1": {"status": 5, "gift_wrap": 1, "items": "one item"}, "o2": {"status": ["paid"], "items": {"line": 1}}},
        {
            "o1": {"status": {"code": "paid"}, "gift_wrap": {"paper": "red"}, "items": {"line": 1}},
            "o2": {"status": True, "gift_wrap": [1, "two"], "items": [{"line": "one", "unit_price": 1.5}]},
        },
    ]
    countries: list[Any] = ["DE", 49, b"DE"]  # SQLite: text, then an integer, then a blob in one column
    project.run()
    before = raw_and_modelled_columns(project)

    for hour, (versions, country) in enumerate(zip(loads, countries, strict=True), start=13):
        for order_id, changes in versions.items():
            project.api_store.add(order(order_id, updated_at=f"2024-03-01T{hour}:00:00Z", **changes))
        project.app_db.upsert_customer(**customer("c1", country=country, updated_at=f"2024-03-01 {hour}:00:00"))
        project.run()  # every load lands and every build passes (run asserts both)

    assert raw_and_modelled_columns(project) == before
    statuses = project.query("select id, status from raw_shop_api.orders order by id, _version_at")
    assert statuses == [
        ("o1", "paid"),
        ("o1", "5"),
        ("o1", '{"code":"paid"}'),
        ("o2", "paid"),
        ("o2", '["paid"]'),
        ("o2", "true"),
    ]
    countries_landed = project.query("select country from raw_app_db.customers order by _version_at")
    assert countries_landed == [("DE",), ("DE",), ("49",), ("DE",)]
    # each order's latest version is open in quarantine, the first one stays canonical
    assert {key: "invalid_status" in rules for key, (_, rules) in project.open_quarantine("orders").items()} == {
        "o1": True,
        "o2": True,
    }
    assert project.query("select order_id, status, updated_at from analytics.orders order by order_id") == [
        ("o1", "paid", datetime(2024, 3, 1, 13, tzinfo=UTC)),
        ("o2", "paid", datetime(2024, 3, 1, 13, tzinfo=UTC)),
    ]


def test_a_column_that_appears_in_raw_reaches_no_model_unasked(project: Project) -> None:
    """What dlt does when a loader starts landing a new field: it adds a nullable column to the raw table.
    The staging models name their columns, so the models neither see it nor fail on it."""
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.run()
    before = raw_and_modelled_columns(project)
    with connect(project.settings, read_only=False) as conn:
        conn.cursor().execute("alter table raw_shop_api.orders add column surprise varchar")
        conn.cursor().execute("update raw_shop_api.orders set surprise = 'boo'")

    project.api_store.add(order("o1", updated_at="2024-03-01T13:00:00Z"))
    project.run()

    after = raw_and_modelled_columns(project)
    names = [name for name, _ in before["raw_shop_api.orders"]]
    assert [name for name, _ in after["raw_shop_api.orders"]] == sorted([*names, "surprise"])
    assert {k: v for k, v in after.items() if k != "raw_shop_api.orders"} == {
        k: v for k, v in before.items() if k != "raw_shop_api.orders"
    }

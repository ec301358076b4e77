"""Contract 2.1: the canonical tables have exactly the contract's columns; timestamps are UTC
timestamptz and money is numeric(18,2), never a float, on every warehouse (Spark's one `timestamp` is an
instant, its timestamptz; its `timestamp_ntz` would not be)."""

from __future__ import annotations

import pytest

from tests.contract.records import customer, order

pytestmark = pytest.mark.warehouses("duckdb", "postgres")

MONEY = "numeric(18,2)"
TIMESTAMP = "timestamptz"
COLUMNS = {
    "customers": {
        "customer_id": "text",
        "email": "text",
        "full_name": "text",
        "country_code": "text",
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "is_deleted": "boolean",
    },
    "products": {
        "sku": "text",
        "product_name": "text",
        "category": "text",
        "list_price": MONEY,
        "currency": "text",
        "is_active": "boolean",
        "updated_at": TIMESTAMP,
    },
    "orders": {
        "order_id": "text",
        "customer_id": "text",
        "status": "text",
        "currency": "text",
        "shipping_country": "text",
        "item_count": "integer",
        "order_total": MONEY,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
    "order_items": {
        "order_id": "text",
        "line_number": "integer",
        "sku": "text",
        "quantity": "integer",
        "unit_price": MONEY,
        "line_amount": MONEY,
    },
    "payments": {
        "payment_id": "text",
        "order_id": "text",
        "amount": MONEY,
        "currency": "text",
        "method": "text",
        "status": "text",
        "paid_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
    "daily_revenue": {
        "revenue_date": "date",
        "currency": "text",
        "payments_count": "integer",
        "gross_amount": MONEY,
        "refunded_amount": MONEY,
        "net_amount": MONEY,
    },
}


def kind(data_type: str, precision: int | None = None, scale: int | None = None) -> str:
    """information_schema's type (or Spark's `describe`), folded to what the contract speaks of."""
    name = data_type.lower()
    if name.split("(")[0] in ("numeric", "decimal"):
        if precision is None and "(" in name:  # Spark: decimal(18,2)
            precision, scale = (int(part) for part in name.split("(")[1].rstrip(")").split(","))
        return f"numeric({precision},{scale})"
    if name in ("timestamp with time zone", "timestamptz"):
        return TIMESTAMP
    if name in ("character varying", "varchar", "text", "string"):
        return "text"
    if name in ("integer", "bigint", "smallint", "int", "int4", "int8"):
        return "integer"
    return name


def test_canonical_tables_have_the_contracts_columns_and_types(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.run()

    found: dict[str, dict[str, str]] = {}
    if project.warehouse.target == "spark":
        for table in COLUMNS:
            for column, data_type, *_ in project.query(f"describe analytics.{table}"):
                if column and not column.startswith("#"):  # partition and detail sections
                    instant = data_type == "timestamp"  # Spark's TIMESTAMP_LTZ
                    found.setdefault(table, {})[column] = kind("timestamptz" if instant else data_type)
    else:
        rows = project.query(
            "select table_name, column_name, data_type, numeric_precision, numeric_scale "
            "from information_schema.columns where table_schema = 'analytics' order by table_name, ordinal_position"
        )
        for table, column, data_type, precision, scale in rows:
            found.setdefault(table, {})[column] = kind(data_type, precision, scale)
    assert found == COLUMNS

"""A corpus of bad input at the orders API and the app database, on both warehouses: every record lands
(and dbt judges it) or is dead-lettered whole with its raw text; no load and no dbt build fails; no good
record beside a bad one is lost (landed + dead-lettered = served), and every landed key ends canonical or
open in quarantine."""

from __future__ import annotations

import json
import string
from random import Random
from typing import Any

import pytest

from tests.contract.records import customer, order
from tests.support.project import Project

pytestmark = pytest.mark.warehouses("postgres")

LAND, DEAD = "land", "dead"
SQL = "'; drop table x; --"
QUOTED = '"quoted"'


def noise(length: int, seed: int) -> str:
    """Text that no compression shrinks (PostgreSQL compresses long index entries that repeat)."""
    return "".join(Random(seed).choices(string.ascii_letters + string.digits, k=length))


def good_order(n: int) -> dict[str, Any]:
    return order(f"good_{n:04d}", updated_at=f"2024-03-01T12:{n // 60:02d}:{n % 60:02d}Z")


def bad_orders() -> dict[str, tuple[str, Any]]:
    """case -> (expected outcome, the body as stored: a dict, or JSON text served verbatim)."""
    nulls = dict.fromkeys(("customer_id", "status", "currency", "shipping_country", "created_at", "updated_at"))
    deep: Any = "bottom"
    for _ in range(100):
        deep = {"down": [deep]}
    cases: dict[str, tuple[str, Any]] = {
        # unknown fields and nulls
        "unknown_fields": (LAND, {"coupon": "X", "nested": {"deep": [1, 2, None]}, "flags": [True, False]}),
        "deep_unknown_field": (LAND, {"deep": deep}),
        "every_field_null": (LAND, {**nulls, "items": None}),
        "only_an_id": (LAND, "only"),
        "items_null": (LAND, {"items": None}),
        "items_of_null": (LAND, {"items": [None, None]}),
        "item_fields_null": (LAND, {"items": [dict.fromkeys(("line", "sku", "quantity", "unit_price"))]}),
        "items_a_string": (LAND, {"items": "two mugs"}),
        "items_an_object": (LAND, {"items": {"line": 1, "sku": "SKU-1"}}),
        "items_empty": (LAND, {"items": []}),
        # numbers as strings, strings as numbers, other JSON types where text is expected
        "numbers_as_strings": (
            LAND,
            {"items": [{"line": "1", "sku": "SKU-1", "quantity": "2", "unit_price": "19.90"}]},
        ),
        "strings_as_numbers": (
            LAND,
            {"customer_id": 42, "status": 1, "currency": 978, "created_at": 1709287200, "updated_at": 1709294400.5},
        ),
        "bools_and_objects": (LAND, {"status": True, "currency": {"code": "EUR"}, "shipping_country": ["DE"]}),
        "long_decimals": (
            LAND,
            '{"id": "long_decimals", "case": "long_decimals", "updated_at": "2024-03-01T12:00:00Z",'
            ' "items": [{"line": 1, "sku": "S", "quantity": 2, "unit_price": 19.900000000000000001}]}',
        ),
        "huge_and_tiny_numbers": (LAND, {"items": [{"line": 1e400, "quantity": -0.0, "unit_price": 1e-400}]}),
        "not_a_number_literals": (
            LAND,
            '{"id": "not_a_number_literals", "case": "not_a_number_literals", "updated_at": "2024-03-01T12:00:00Z",'
            ' "items": [{"line": 1, "sku": "S", "quantity": NaN, "unit_price": Infinity}], "status": -Infinity}',
        ),
        "duplicate_keys": (
            LAND,
            '{"id": "duplicate_keys", "case": "duplicate_keys", "status": "paid", "status": "lost", "items": []}',
        ),
        "bad_timestamps": (LAND, {"created_at": "2024-02-30T00:00:00Z", "updated_at": "yesterday"}),
        "empty_strings": (LAND, {"customer_id": "", "status": "", "currency": "", "updated_at": ""}),
        # text: non-ASCII, SQL-looking, very long
        "emoji": (LAND, {"status": "paid 🛒🎉👨‍👩‍👧", "customer_id": "c_😀"}),
        "right_to_left": (LAND, {"status": "שלום עולם", "shipping_country": "مرحبا"}),
        "combining_marks": (LAND, {"status": "pa\u0301i\u0308d\u20dd", "customer_id": "Z\u0351\u0352\u0353"}),
        "invisible_characters": (LAND, {"status": "\ufeffpaid\u200b\u2028\u2029", "currency": "E\u00adUR"}),
        "control_characters": (LAND, {"status": "pa\tid\r\n\x1b[31m\x7f"}),
        "sql_values": (LAND, {"customer_id": SQL, "status": QUOTED, "currency": "EUR'); DROP TABLE orders;--"}),
        "sql_field_names": (LAND, {SQL: 1, QUOTED: 2, "select * from t": 3, "": "an empty name"}),
        "shadowing_field_names": (LAND, {"_record": "x", "_version": "x", "_dlt_id": "x", "ID": "x", "Status": "x"}),
        "long_field_name": (LAND, {noise(10_000, 1): "a 10 000-character field name"}),
        "long_values": (
            LAND,
            {
                "status": "x" * 10_000,
                "currency": noise(10_000, 2),
                "updated_at": noise(10_000, 7),
                "items": [{"line": 1, "sku": noise(10_000, 3), "quantity": 1, "unit_price": "1.00"}],
            },
        ),
        "long_reference": (DEAD, {"customer_id": noise(10_000, 8)}),  # names a key no table can hold
        "reference_at_the_limit": (LAND, {"customer_id": "ü" * 512}),
        # the natural key
        "id_a_number": (LAND, {"id": 987654321}),
        "id_a_decimal": (LAND, {"id": 12.5}),
        "id_sql": (LAND, {"id": SQL}),
        "id_quoted": (LAND, {"id": QUOTED}),
        "id_emoji": (LAND, {"id": "o_🛒"}),
        "id_at_the_limit": (LAND, {"id": noise(1024, 9)}),
        "id_long": (DEAD, {"id": noise(10_000, 4)}),
        "id_long_in_bytes": (DEAD, {"id": "ü" * 513}),
        "id_a_bool": (DEAD, {"id": True}),
        "id_an_object": (DEAD, {"id": {"value": "o_1"}}),
        "id_a_list": (DEAD, {"id": ["o_1"]}),
        "id_null": (DEAD, {"id": None}),
        "id_missing": (DEAD, {"id": ...}),
        "id_empty": (DEAD, {"id": ""}),
        "id_blank": (DEAD, {"id": "   "}),
        # text no warehouse can store
        "nul_in_a_field": (DEAD, {"status": "pa\x00id"}),
        "nul_in_an_item": (DEAD, {"items": [{"line": 1, "sku": "S\x00KU"}]}),
        "nul_in_a_field_name": (DEAD, {"odd\x00name": 1}),
        "lone_surrogate": (
            DEAD,
            '{"id": "lone_surrogate", "case": "lone_surrogate", "status": "\\ud800", "items": []}',
        ),
        # not an object at all
        "a_string": (DEAD, '"case a_string"'),
        "a_number": (DEAD, "424242"),
        "a_list": (DEAD, '["case a_list", {"id": "o_in_a_list"}]'),
        "null": (DEAD, "null"),
    }
    corpus: dict[str, tuple[str, Any]] = {}
    for case, (outcome, body) in cases.items():
        if isinstance(body, dict):
            base = {"id": case, "case": case, "updated_at": "2024-03-01T12:00:00Z", "items": []}
            body = {key: value for key, value in {**base, **body}.items() if value is not ...}
        elif body == "only":
            body = {"id": case}
        corpus[case] = (outcome, body)
    return corpus


def case_of(raw: str) -> str:
    """Which case a landed `_record` or a dead letter's raw text is."""
    value = json.loads(raw)
    if isinstance(value, dict):
        return value.get("case") or value.get("id") or "?"
    if isinstance(value, list):
        return value[0].removeprefix("case ")
    return {"424242": "a_number", "null": "null"}.get(raw) or str(value).removeprefix("case ")


def test_bad_api_bodies_land_or_are_dead_lettered_whole_and_nothing_is_lost(project: Project) -> None:
    corpus = bad_orders()
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add_many(good_order(n) for n in range(1_000))
    project.api_store.add_many(body for _, body in corpus.values())
    project.api_store.add_many(good_order(n) for n in range(1_000, 1_100))
    served = 1_100 + len(corpus)

    outcome = {o.source: o for o in project.load()}["shop_api"]
    project.build()

    expected_dead = sum(outcome == DEAD for outcome, _ in corpus.values())
    assert (outcome.extracted, outcome.landed, outcome.dead_lettered) == (served, served - expected_dead, expected_dead)
    records = [row[0] for row in project.query("select _record from raw_shop_api.orders")]
    dead = project.query("select raw_text, error from raw_shop_api.dead_letters")
    assert len(records) + len(dead) == served  # landed + dead-lettered = served: not one lost
    landed_cases = {case_of(r) for r in records if not str(json.loads(r)["id"]).startswith("good_")}
    expected_landed = {case for case, (outcome, _) in corpus.items() if outcome == LAND}
    assert landed_cases == expected_landed
    assert {case_of(raw) for raw, _ in dead} == {case for case, (outcome, _) in corpus.items() if outcome == DEAD}
    assert all(error for _, error in dead)
    assert project.scalar("select count(*) from ops.dead_letters where source = 'shop_api'") == len(dead)

    # the values landed as they came: text as text, numbers with their digits, names and values untouched
    def landed(case: str, column: str) -> Any:
        return project.scalar(f"select {column} from raw_shop_api.orders where id = '{case}'")

    assert landed("strings_as_numbers", "customer_id") == "42"
    assert landed("strings_as_numbers", "updated_at") == "1709294400.5"
    assert json.loads(landed("long_decimals", "items")) == [
        {"line": 1, "quantity": 2, "sku": "S", "unit_price": "19.900000000000000001"}
    ]
    assert landed("emoji", "status") == "paid 🛒🎉👨‍👩‍👧"
    assert landed("combining_marks", "status") == "pa\u0301i\u0308d\u20dd"
    assert landed("sql_values", "customer_id") == SQL
    assert landed("long_values", "currency") == noise(10_000, 2)
    assert project.scalar("select count(*) from raw_shop_api.orders where id = '987654321'") == 1
    assert project.scalar(f"select count(*) from raw_shop_api.orders where id = '{noise(1024, 9)}'") == 1
    errors = {case_of(raw): error for raw, error in dead}
    assert errors["id_long"] == "id: Value error, longer than 1024 bytes, more than a key can be"
    assert errors["nul_in_an_item"] == "record.items[0].sku: a NUL character, which the warehouse cannot store"
    assert errors["lone_surrogate"].startswith("record.status: a lone surrogate")
    assert json.loads(landed("sql_field_names", "_record"))[SQL] == 1

    # dbt took every landed key: canonical or open in quarantine
    landed_ids = {row[0] for row in project.query("select distinct id from raw_shop_api.orders")}
    judged = {key for (key,) in project.canonical("orders")} | set(project.open_quarantine("orders"))
    assert judged == landed_ids
    assert {f"good_{n:04d}" for n in range(1_100)} <= {key for (key,) in project.canonical("orders")}


def test_bad_database_rows_land_or_are_dead_lettered_whole_and_nothing_is_lost(project: Project) -> None:
    rows: dict[str, tuple[str, dict[str, Any]]] = {
        "every_nullable_column_null": (LAND, {"id": "every_nullable_column_null"}),
        "numbers_in_text_columns": (LAND, customer("numbers_in_text_columns", email=42, full_name=1.5, country=49)),
        "numbers_as_timestamps": (LAND, customer("numbers_as_timestamps", created_at=1709287200, updated_at=1.5)),
        "text_in_timestamps": (LAND, customer("text_in_timestamps", created_at="soon", updated_at="2024-02-30")),
        "long_email": (LAND, customer("long_email", email=noise(10_000, 5) + "@example.com")),
        "non_ascii": (LAND, customer("non_ascii", full_name="Zoë 🛒 שלום e\u0301\u0301", country="ÄÖ")),
        "sql_values": (LAND, customer("sql_values", full_name=SQL, email=QUOTED)),
        "id_sql": (LAND, customer("id_sql", id=SQL)),
        "id_an_integer": (LAND, customer("id_an_integer", id=4242)),
        "id_long": (DEAD, customer("id_long", id=noise(10_000, 6))),
        "long_version": (LAND, customer("long_version", updated_at=noise(10_000, 10))),
        "utf8_blob": (LAND, customer("utf8_blob", full_name="café".encode())),
        "binary_blob": (DEAD, customer("binary_blob", full_name=b"\xff\xfe\x00\x01")),
        "nul_in_text": (DEAD, customer("nul_in_text", full_name="a\x00b")),
        "id_null": (DEAD, customer("id_null", id=None)),
        "id_empty": (DEAD, customer("id_empty", id="")),
    }
    products: dict[str, tuple[str, dict[str, Any]]] = {
        "text_price": (LAND, {"sku": "text_price", "list_price": "abc", "active": "maybe", "updated_at": "x"}),
        "huge_price": (LAND, {"sku": "huge_price", "list_price": 1e308, "active": 2, "currency": 978}),
        "blob_price": (LAND, {"sku": "blob_price", "list_price": b"19.90", "active": None}),
        "every_nullable_column_null": (LAND, {"sku": "every_nullable_column_null"}),
        "sku_null": (DEAD, {"sku": None, "name": "sku_null"}),
    }
    for _, row in rows.values():
        project.app_db.upsert_customer(**row)
    for _, row in products.values():
        project.app_db.upsert_product(**row)
    for n in range(200):
        project.app_db.upsert_customer(**customer(f"good_{n:03d}"))

    outcome = {o.source: o for o in project.load()}["app_db"]
    project.build()

    served = len(rows) + len(products) + 200
    expected_dead = sum(outcome == DEAD for outcome, _ in [*rows.values(), *products.values()])
    assert (outcome.extracted, outcome.dead_lettered) == (served, expected_dead)
    customers = [row[0] for row in project.query("select _record from raw_app_db.customers")]
    skus = [row[0] for row in project.query("select _record from raw_app_db.products")]
    dead = project.query("select resource, raw_text, error from raw_app_db.dead_letters order by raw_text")
    assert len(customers) + len(skus) + len(dead) == served

    cases = set(rows) | set(products)

    def marker(raw: str) -> str:
        """The case a landed `_record` or a dead letter's raw text is: its key, else its email or name."""
        record = json.loads(raw)
        key = record.get("id", record.get("sku"))
        if key in cases:
            return key
        return (record.get("email") or "").removesuffix("@example.com") or record.get("name")

    landed = {marker(r) for r in customers if not str(json.loads(r)["id"]).startswith("good_")}
    assert landed == {case for case, (outcome, _) in rows.items() if outcome == LAND}
    assert {marker(r) for r in skus} == {case for case, (outcome, _) in products.items() if outcome == LAND}
    assert {marker(raw) for _, raw, _ in dead} == {
        case for case, (outcome, _) in [*rows.items(), *products.items()] if outcome == DEAD
    }
    errors = {marker(raw): error for _, raw, error in dead}
    assert errors["binary_blob"] == "full_name: invalid UTF-8 at byte 0"
    assert errors["nul_in_text"] == "record.full_name: a NUL character, which the warehouse cannot store"
    blob = next(json.loads(raw) for _, raw, _ in dead if "binary_blob" in raw)
    assert blob["full_name"] == "\\xff\\xfe\x00\x01"  # the bytes that are not UTF-8, escaped

    def value(column: str, key: str, table: str = "customers", key_column: str = "id") -> Any:
        return project.scalar(f"select {column} from raw_app_db.{table} where {key_column} = '{key}'")

    assert value("email", "numbers_in_text_columns") == "42"
    assert value("full_name", "utf8_blob") == "café"
    assert value("full_name", "non_ascii") == "Zoë 🛒 שלום e\u0301\u0301"
    assert value("email", "long_email") == noise(10_000, 5) + "@example.com"
    assert value("list_price", "text_price", "products", "sku") == "abc"

    # dbt took every landed key: canonical or open in quarantine
    for table, key_column, entity in [("customers", "id", "customers"), ("products", "sku", "products")]:
        landed_keys = {row[0] for row in project.query(f"select distinct {key_column} from raw_app_db.{table}")}
        judged = {key for (key,) in project.canonical(entity)} | set(project.open_quarantine(entity))
        assert judged == landed_keys, table

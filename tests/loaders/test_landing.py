"""The landing boundary: landability only; a record that breaks a contract rule still lands as it came."""

from __future__ import annotations

from datetime import UTC, datetime

from loaders.records import Order, Payment
from loaders.sources.landing import Batch
from loaders.timestamps import parse_timestamp

NOW = datetime(2024, 3, 2, tzinfo=UTC)


def test_unlandable_records_are_dead_lettered_whole() -> None:
    batch = Batch("shop_api", "orders", Order, key="id")
    assert not batch.add("garbage", '"garbage"', "page 1 item 0", NOW, 1)
    assert not batch.add({"customer_id": "c1"}, '{"customer_id": "c1"}', "page 1 item 1", NOW, 2)
    assert not batch.add({"id": "  "}, '{"id": "  "}', "page 1 item 2", NOW, 3)
    dead = batch.pending_dead_letters
    assert [d["raw_text"] for d in dead] == ['"garbage"', '{"customer_id": "c1"}', '{"id": "  "}']
    assert dead[1]["error"] == "id: Field required"
    assert len({d["dead_letter_id"] for d in dead}) == 3
    # the same record re-served at another position is the same dead letter
    batch.add("garbage", '"garbage"', "page 7 item 3", NOW, 9)
    assert dead[3]["dead_letter_id"] == dead[0]["dead_letter_id"]


def test_rule_breaking_values_land_as_text_with_the_whole_record() -> None:
    batch = Batch("shop_api", "orders", Order, key="id")
    record = {"id": 123, "status": "lost", "items": [{"quantity": 2, "unit_price": "1.999"}], "coupon": "X"}
    assert batch.add(record, "{}", "page 1 item 0", NOW, 1)
    row = batch.pending_rows[0]
    assert row["id"] == "123" and row["status"] == "lost"
    assert row["_version"] == "" and row["_version_at"] is None
    assert '"coupon": "X"' in row["_record"]
    assert row["items"] == '[{"quantity": 2, "unit_price": "1.999"}]'


def test_payment_amounts_keep_their_digits() -> None:
    batch = Batch("payments_files", "payments", Payment, key="payment_id")
    batch.add({"payment_id": "p1", "amount": "19.90", "updated_at": "2024-03-01T12:31:00Z"}, "", "f line 2", NOW, 2)
    assert batch.pending_rows[0]["amount"] == "19.90"
    assert batch.pending_rows[0]["_version_at"] == datetime(2024, 3, 1, 12, 31, tzinfo=UTC)


def test_versions_parse_iso_and_sqlite_forms_and_nothing_else() -> None:
    assert parse_timestamp("2024-03-01T12:30:00Z") == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert parse_timestamp("2024-03-01 12:30:00") == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert parse_timestamp("2024-03-01T14:30:00+02:00") == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert parse_timestamp("not-a-date") is None
    assert parse_timestamp("") is None
    assert parse_timestamp(None) is None

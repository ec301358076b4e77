"""The landing boundary: landability only; a record that breaks a contract rule still lands as it came."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from loaders.core.timestamps import parse_timestamp
from loaders.landing.batch import Batch, SubclassedName, TakenWithoutVersion
from loaders.landing.columnar import parse_timestamps
from loaders.landing.records import to_json
from loaders.sources.app_db.records import Customer
from loaders.sources.payments_files.records import Payment
from loaders.sources.shop_api.records import Order

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
    assert json.loads(row["_record"]) == record
    assert json.loads(row["items"]) == [{"quantity": 2, "unit_price": "1.999"}]


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


def judged_by_the_model(batch: Batch) -> Batch:
    """The batch with its fast path turned off: every record goes through the pydantic model."""
    batch._plain_values = lambda record: None  # type: ignore[method-assign]
    return batch


TRICKY = ["", " k1 ", "2024-03-01T12:00:00Z", "ü" * 300, "x" * 1100, "pa\x00id", "\ud800"]
SCALARS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(TRICKY),
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=4), SCALARS, max_size=3))
MISSING = object()


@st.composite
def records(draw: Any, model: Any) -> Any:
    """Objects with the model's fields and two more: every field missing, null or text (tricky text
    included), or any of them any JSON value; now and then not an object at all."""
    shape = draw(st.sampled_from(["text", "text", "any", "not an object"]))
    if shape == "not an object":
        return draw(VALUES)
    plain = st.one_of(st.just(MISSING), st.none(), st.sampled_from(TRICKY), st.text(max_size=6))
    field = plain if shape == "text" else st.one_of(plain, VALUES)
    drawn = {name: draw(field) for name in [*model.model_fields, "extra", "Status"]}
    if draw(st.booleans()):  # a plain key, so that the other fields decide the path more often
        drawn[next(iter(model.model_fields))] = draw(st.sampled_from(["o1", "p_2", "c 3"]))
    return {name: value for name, value in drawn.items() if value is not MISSING}


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_the_fast_path_lands_what_the_model_would(data: Any) -> None:
    """Records whose fields are all text take a path that builds no pydantic object; any record, plain or
    not, lands (or is dead-lettered) exactly as the model alone would land it."""
    model, key = data.draw(st.sampled_from([(Order, "id"), (Customer, "id"), (Payment, "payment_id")]))
    batch = data.draw(st.sampled_from(["raw", "json"]))
    fast, slow = Batch("s", "t", model, key=key), judged_by_the_model(Batch("s", "t", model, key=key))
    for seq, record in enumerate(data.draw(st.lists(records(model), min_size=1, max_size=5)), start=1):
        raw = None if batch == "json" else f"line {seq}"
        assert fast.add(record, raw, f"row {seq}", NOW, seq) == slow.add(record, raw, f"row {seq}", NOW, seq)
    assert fast.pending_rows == slow.pending_rows
    strip = ("dead_lettered_at",)
    assert [{k: v for k, v in d.items() if k not in strip} for d in fast.pending_dead_letters] == [
        {k: v for k, v in d.items() if k not in strip} for d in slow.pending_dead_letters
    ]


def test_json_text_keeps_what_orjson_would_change() -> None:
    assert to_json({"b": 1, "a": [1.5, None]}, sort_keys=True) == '{"a":[1.5,null],"b":1}'
    assert json.loads(to_json({"q": math.nan, "p": -math.inf}), parse_constant=str) == {"q": "NaN", "p": "-Infinity"}
    assert json.loads(to_json({"n": 2**70})) == {"n": 2**70}
    assert to_json({"s": "\ud800"}) == '{"s": "\ud800"}'


# Texts an Arrow column can hold (no lone surrogate), common-shape versions among them, valid or not.
COLUMN_TEXT = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.sampled_from(
        [t for t in TRICKY if t != "\ud800"] + ["a\tb", 'q"uo\\te', "é", "p 1", " p1", "p1\u00a0", "p1", "c_2", "o1"]
    ),
    st.builds(
        "{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}".format,
        st.sampled_from([0, 1, 999, 2024, 2023, 9999]),
        st.integers(0, 13),
        st.integers(0, 32),
        st.sampled_from(["T", " ", "t", "_"]),
        st.integers(0, 24),
        st.integers(0, 60),
        st.integers(0, 60),
        st.sampled_from(["", "Z", "z", "+01:00", ".5"]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_column_path_lands_what_the_record_path_would(data: Any) -> None:
    """`Batch.add_table` (Arrow's kernels over whole columns) lands every row and dead-letters every record
    exactly as `Batch.add` does record by record: the same rows, JSON, versions and dead letters."""
    model, key = data.draw(st.sampled_from([(Customer, "id"), (Payment, "payment_id")]))
    names = data.draw(st.permutations([*model.model_fields, "extra", "Status"]))
    names = names[: data.draw(st.integers(1, len(names)))]
    rows = data.draw(st.lists(st.lists(COLUMN_TEXT, min_size=len(names), max_size=len(names)), max_size=8))
    records = [dict(zip(names, row, strict=True)) for row in rows]  # the columns' order, as a reader gives
    as_line = data.draw(st.booleans())  # a settlement line's raw text, or none (an app database row)
    raws = [f"line {seq}" if as_line else None for seq in range(len(records))]
    spaced = data.draw(st.booleans())  # field names as SQLAlchemy's rows give them: a str subclass
    if spaced:
        records = [{SubclassedName(name): value for name, value in record.items()} for record in records]
    by_record, by_column = Batch("s", "t", model, key=key), Batch("s", "t", model, key=key)
    for seq, (record, raw) in enumerate(zip(records, raws, strict=True)):
        by_record.add(record, raw, f"row {seq}", NOW, seq)
    table = pa.Table.from_pylist(records, schema=pa.schema([(name, pa.string()) for name in names]))
    by_column.add_table(
        table,
        pa.array([f"row {seq}" for seq in range(len(records))]),
        NOW,
        pa.array(range(len(records)), pa.int64()),
        pa.array(raws, pa.string()) if as_line else None,
        spaced_json=spaced,
    )
    assert sorted(by_column.pending_rows, key=lambda row: row["_delivery_seq"]) == by_record.pending_rows
    strip = ("dead_lettered_at",)
    assert sorted(
        ({k: v for k, v in d.items() if k not in strip} for d in by_column.pending_dead_letters), key=str
    ) == sorted(({k: v for k, v in d.items() if k not in strip} for d in by_record.pending_dead_letters), key=str)


@settings(max_examples=300, deadline=None)
@given(st.lists(COLUMN_TEXT, max_size=20))
def test_versions_parse_alike_one_by_one_and_by_column(texts: list[str | None]) -> None:
    assert parse_timestamps(pa.array(texts, pa.string())).to_pylist() == [parse_timestamp(t) for t in texts]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_page_of_json_records_lands_as_one_by_one(data: Any) -> None:
    """`Batch.add_records` (a page at once) lands, dead-letters and takes-once exactly what `Batch.add` does
    record by record after `TakenWithoutVersion.is_new`, any record, object or not, plain or not."""
    model, key = data.draw(st.sampled_from([(Order, "id"), (Customer, "id"), (Payment, "payment_id")]))
    page = data.draw(st.lists(records(model), max_size=6))
    page += page[: data.draw(st.integers(0, 2))]  # records served again
    by_record, by_page = Batch("s", "t", model, key=key), Batch("s", "t", model, key=key)
    state_one, state_page = {"taken_without_version": ["seen"]}, {"taken_without_version": ["seen"]}
    taken_one, taken_page = TakenWithoutVersion(state_one), TakenWithoutVersion(state_page)
    for seq, record in enumerate(page):
        if taken_one.is_new(record):
            by_record.add(record, None, f"item {seq}", NOW, seq)
    by_page.add_records(
        page,
        pa.array([f"item {seq}" for seq in range(len(page))]),
        NOW,
        pa.array(range(len(page)), pa.int64()),
        taken_page,
    )
    assert sorted(by_page.pending_rows, key=lambda row: row["_delivery_seq"]) == by_record.pending_rows
    strip = ("dead_lettered_at",)
    assert [{k: v for k, v in d.items() if k not in strip} for d in by_page.pending_dead_letters] == [
        {k: v for k, v in d.items() if k not in strip} for d in by_record.pending_dead_letters
    ]
    assert state_page == state_one

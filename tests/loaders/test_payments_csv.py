"""Reading settlement files: every record comes out landed or as a dead letter with its raw text."""

from __future__ import annotations

import io

from loaders.sources.payments_files.helpers import read_csv_records

HEADER = b"payment_id,order_id,amount,currency,method,status,paid_at,updated_at"
GOOD = b"p1,o1,19.90,EUR,card,succeeded,2024-03-01T12:31:00Z,2024-03-01T12:31:00Z"


def records(data: bytes) -> list:
    return list(read_csv_records(io.BytesIO(data)))


def test_bom_crlf_and_quoted_newlines_are_read_as_csv() -> None:
    data = b"\xef\xbb\xbf" + HEADER + b"\r\n" + GOOD + b"\r\n" + b'p2,"o\n2",1.00,EUR,card,failed,x,y\r\n'
    got = records(data)
    assert [r.fields["payment_id"] for r in got] == ["p1", "p2"]
    assert got[1].fields["order_id"] == "o\n2"
    assert got[1].raw_text == 'p2,"o\n2",1.00,EUR,card,failed,x,y\r\n'


def test_damaged_rows_become_dead_letters_and_the_rows_around_them_go_on() -> None:
    data = b"\n".join([HEADER, b"p0,o0", GOOD, b"p\xff,o1,1,EUR,card,succeeded,x,y", GOOD.replace(b"p1", b"p3"), b""])
    got = records(data)
    assert [(r.line, r.fields is None) for r in got] == [(2, True), (3, False), (4, True), (5, False)]
    assert got[0].error == "expected 8 fields, found 2" and got[0].raw_text == "p0,o0\n"
    assert got[2].error.startswith("invalid UTF-8") and "\\xff" in got[2].raw_text


def test_columns_in_another_order_or_extra_are_read_by_name() -> None:
    header = b"order_id,payment_id,note,amount,currency,method,status,paid_at,updated_at"
    data = header + b"\no1,p1,hi,1.00,EUR,card,succeeded,a,b\n"
    (record,) = records(data)
    assert record.fields["payment_id"] == "p1" and record.fields["note"] == "hi"


def test_large_field_lands_and_empty_files_yield_nothing() -> None:
    big = b"x" * 1_100_000
    (record,) = records(HEADER + b"\n" + GOOD.replace(b"card", big) + b"\n")
    assert len(record.fields["method"]) == 1_100_000
    assert records(b"") == []
    assert records(HEADER + b"\r\n") == []

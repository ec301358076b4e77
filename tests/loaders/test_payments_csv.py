"""Reading settlement files: every record comes out landed or as a dead letter with its raw text."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loaders.sources.payments_files.helpers import read_csv_records, read_csv_table

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


FIELD = st.text(alphabet=st.sampled_from(list("ab1 ,.-é\t\x00")), max_size=5)


@st.composite
def settlement_files(draw: Any) -> bytes:
    """Files with the header in any case and order, BOMs, CRLF or LF, empty lines, fields holding commas,
    tabs, NULs or blanks (so lines with a wrong field count), a last line with or without its line end."""
    names = draw(st.permutations(["payment_id", "order_id", "amount", "Updated_At", "note"]))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    rows = draw(st.lists(st.one_of(st.just([]), st.lists(FIELD, min_size=4, max_size=6)), max_size=12))
    lines = [",".join(names)] + [",".join(row) for row in rows]
    text = end.join(lines) + (end if draw(st.booleans()) else "")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()


@settings(max_examples=300, deadline=None)
@given(settlement_files())
def test_arrow_reads_a_file_as_the_csv_module_does(data: bytes) -> None:
    """Arrow's reader (`read_csv_table`) and Python's csv module line by line give the same records: fields,
    line numbers, raw text, and the same damaged lines with the same errors."""
    parsed = read_csv_table(data)
    assert parsed is not None  # no quote, no lone carriage return: Arrow's reader takes the file
    by_line = records(data)
    rows = [
        (line, raw, fields)
        for line, raw, fields in zip(
            parsed.lines.to_pylist(), parsed.raw_texts.to_pylist(), parsed.table.to_pylist(), strict=True
        )
    ]
    assert rows == [(r.line, r.raw_text, r.fields) for r in by_line if r.fields is not None]
    assert [(r.line, r.raw_text, r.error) for r in parsed.damaged] == [
        (r.line, r.raw_text, r.error) for r in by_line if r.fields is None
    ]
    assert parsed.last_line == max((r.line for r in by_line), default=0)
    controls = [any(ord(c) < 32 and c not in "\r\n" for c in raw) for raw in parsed.raw_texts.to_pylist()]
    assert parsed.control_characters.to_pylist() == controls


def test_files_only_the_csv_module_reads_as_csv_allows_are_left_to_it() -> None:
    quoted = HEADER + b'\np2,"o\n2",1.00,EUR,card,failed,x,y\n'
    assert read_csv_table(quoted) is None
    assert read_csv_table(HEADER + b"\n" + GOOD + b"\rp2\n") is None  # a carriage return inside a line
    assert read_csv_table(HEADER + b"\n" + GOOD.replace(b"p1", b"p\xff") + b"\n") is None
    assert read_csv_table(b"\n" + HEADER + b"\n" + GOOD + b"\n") is None  # no header on the first line
    assert read_csv_table(b"a,A\n1,2\n") is None  # the same column twice
    assert read_csv_table(HEADER + b"\n" + GOOD + b"\n") is not None

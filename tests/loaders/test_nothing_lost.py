"""Contract 2.2 "nothing is lost": a damaged CSV row is in ops.dead_letters, whole, or landed and
quarantined; it never stops the rows around it and never vanishes."""

from __future__ import annotations

import pytest

from tests.contract.records import customer, delivered, order, payment

pytestmark = pytest.mark.warehouses("postgres")


def test_damaged_csv_rows_are_dead_lettered_or_quarantined(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    rows = [
        payment("p1"),
        "p_short,o1,20.00",  # wrong number of fields: cannot be landed
        payment(""),  # no natural key: cannot be landed
        payment("p_bad_amount", amount="twenty"),  # landable, breaks a rule
        payment("p2"),
    ]
    project.deliver("payments_20240301_01.csv", rows, delivered(2))
    load = {outcome.source: outcome for outcome in project.load()}["payments_files"]
    project.build()

    assert (load.extracted, load.landed, load.dead_lettered) == (5, 3, 2)
    dead = project.query("select source, location, raw_text, error from ops.dead_letters order by location")
    assert dead == [
        ("payments_files", "payments_20240301_01.csv line 3", "p_short,o1,20.00\n", "expected 8 fields, found 3"),
        (
            "payments_files",
            "payments_20240301_01.csv line 4",
            ",o1,20.00,EUR,card,succeeded,2024-03-01T12:30:00Z,2024-03-01T12:30:00Z\n",
            "payment_id: Value error, the natural key is empty",
        ),
    ]
    assert {k[0] for k in project.canonical("payments")} == {"p1", "p2"}
    assert project.open_quarantine("payments") == {"p_bad_amount": ("2024-03-01T12:30:00Z", "bad_amount")}


def test_dead_letters_are_not_duplicated_by_a_rerun(project) -> None:
    project.deliver("payments_20240301_01.csv", [payment("p1"), "broken"], delivered(2))
    project.load()
    project.load()  # the unchanged file is not read again, and nothing lands twice
    project.build()
    assert project.scalar("select count(*) from ops.dead_letters") == 1
    assert project.scalar("select count(*) from raw_payments_files.payments") == 1

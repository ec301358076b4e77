"""What the raw layer promises on every warehouse, where dlt merges raw into tables (DuckDB, PostgreSQL) or
into Delta tables (Spark's lake, loaders/warehouse/lake.py): each landed (key, version) is one row in raw,
the delivery landed last wins, and rows of a load that did not complete are not landed."""

from __future__ import annotations

from decimal import Decimal

from tests.contract.records import customer, delivered, order, payment


def test_a_redelivered_version_is_staged_once_and_the_last_delivery_wins(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.deliver("payments_20240301_01.csv", [payment("p1", amount="20.00")], delivered(1))
    project.load("payments_files")
    project.deliver("payments_20240301_01.csv", [payment("p1", amount="25.00")], delivered(2))  # same version
    project.run()

    # merged on (key, version) in raw itself, on every warehouse
    assert project.query("select amount from raw_payments_files.payments where payment_id = 'p1'") == [("25.00",)]
    staged = project.query("select amount_text from staging.stg_payments_files__payments where payment_id = 'p1'")
    assert staged == [("25.00",)]
    assert project.scalar("select count(*) from staging.int_payments__versions where payment_id = 'p1'") == 1
    assert project.query("select payment_id, amount from analytics.payments") == [("p1", Decimal("25.00"))]


def test_rows_of_a_load_that_did_not_complete_are_not_landed(project) -> None:
    project.deliver("payments_20240301_01.csv", [payment("p1")], delivered(1))
    project.run()
    columns = project.columns("raw_payments_files.payments")
    # a row under a load id that `_dlt_loads` never recorded as complete (a load killed after writing it)
    copied = ", ".join(
        {"payment_id": "'p_unfinished'", "_dlt_load_id": "'9999999999.5'"}.get(name, name) for name in columns
    )
    project.execute(f"insert into raw_payments_files.payments select {copied} from raw_payments_files.payments")
    project.build()

    assert (
        project.scalar("select count(*) from staging.stg_payments_files__payments where payment_id = 'p_unfinished'")
        == 0
    )
    assert "p_unfinished" not in project.open_quarantine("payments")
    assert project.scalar("select count(*) from analytics.payments where payment_id = 'p_unfinished'") == 0
    assert project.scalar("select count(*) from staging.stg_payments_files__payments where payment_id = 'p1'") == 1


def test_a_version_served_twice_in_one_delivery_lands_once_the_later_row_winning(project) -> None:
    project.deliver(
        "payments_20240301_01.csv", [payment("p1", amount="20.00"), payment("p1", amount="25.00")], delivered(1)
    )
    (outcome,) = project.load("payments_files")

    # left out before raw (Spark's lake) or by dlt's merge (the SQL warehouses), and counted as collapsed
    assert (outcome.landed, outcome.collapsed) == (1, 1)
    assert project.query("select amount from raw_payments_files.payments where payment_id = 'p1'") == [("25.00",)]

"""Contract 1.3, which settlement files are read: a manifest of deliveries taken, not a modification-time
cursor. A new file is read whatever its mtime, a re-delivered one is read again and replaces what it
corrects, an unchanged one is never re-read, and "delivered last" is the order the loader took them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from loaders.landing.pipelines import LoadReport
from tests.contract.records import delivered, payment
from tests.support.project import Project, land

FILE = "payments_20240301_01.csv"
LATER_FILE = "payments_20240301_02.csv"


def load_payments(project: Project) -> LoadReport:
    return land(project.settings, "payments_files")


def amounts(project: Project) -> dict[str, Decimal]:
    rows = project.query("select payment_id, amount from raw_payments_files.payments")
    return {payment_id: Decimal(amount) for payment_id, amount in rows}


def winner(project: Project, payment_id: str) -> str:
    """The raw row dbt takes as latest for a payment (its `version_order`): its amount."""
    return project.scalar(
        "select amount from raw_payments_files.payments "
        f"where payment_id = '{payment_id}' "
        "order by _version_at desc nulls last, _delivered_at desc, _delivery_seq desc limit 1"
    )


def test_an_empty_folder_still_creates_the_raw_tables(project) -> None:
    report = load_payments(project)

    assert report.extracted == 0
    assert project.scalar("select count(*) from raw_payments_files.payments") == 0
    assert project.scalar("select count(*) from raw_payments_files.dead_letters") == 0


def test_a_file_copied_with_an_old_mtime_is_read(project) -> None:
    project.deliver(FILE, [payment("p1")], delivered(5))
    load_payments(project)

    # rsync -a: a file arrives after the one above but keeps its older modification time
    project.deliver("payments_20240220_01.csv", [payment("p_old"), payment("p_old2")], delivered(1))
    report = load_payments(project)

    assert report.landed == 2
    assert set(amounts(project)) == {"p1", "p_old", "p_old2"}


def test_a_future_mtime_does_not_hold_back_later_files(project) -> None:
    project.deliver(FILE, [payment("p_future")], datetime(2099, 1, 1, tzinfo=UTC))
    load_payments(project)
    project.deliver(LATER_FILE, [payment("p2")], delivered(3))
    project.deliver("payments_20240302_01.csv", [payment("p3")], delivered(4))

    report = load_payments(project)

    assert report.landed == 2
    assert set(amounts(project)) == {"p_future", "p2", "p3"}
    # the future modification time is not taken as the delivery time: no later than the run
    stamped = project.scalar("select _delivered_at from raw_payments_files.payments where payment_id = 'p_future'")
    assert stamped.year < 2099


def test_an_unchanged_file_is_not_read_again(project) -> None:
    project.deliver(FILE, [payment("p1"), payment("p2"), "damaged"], delivered(2))
    project.deliver(LATER_FILE, [payment("p3")], delivered(3))
    first = load_payments(project)
    assert (first.landed, first.dead_lettered) == (3, 1)

    second = load_payments(project)

    assert second.extracted == 0
    assert project.scalar("select count(*) from raw_payments_files.payments") == 3


def test_a_redelivered_file_is_read_again_and_replaces_the_versions_it_corrects(project) -> None:
    project.deliver(FILE, [payment("p1", amount="20.00"), payment("p2", amount="5.00")], delivered(3))
    load_payments(project)

    # same name, corrected, and an *older* modification time (copied back with its original stamp)
    project.deliver(FILE, [payment("p1", amount="25.00"), payment("p2", amount="5.00")], delivered(2))
    report = load_payments(project)

    # the corrected p1 lands; p2, exactly as raw holds it, is left out (unchanged)
    assert (report.landed, report.unchanged) == (1, 1)
    assert amounts(project) == {"p1": Decimal("25.00"), "p2": Decimal("5.00")}
    assert project.scalar("select count(*) from raw_payments_files.payments") == 2
    assert load_payments(project).extracted == 0


def test_equal_mtimes_the_file_taken_last_wins(project) -> None:
    """Documented winner: files first seen by the same run are taken by mtime, then by path; a file
    first seen by a later run was delivered after every file taken before it."""
    # the same version (same text) merges into one raw row: the one taken last
    project.deliver(LATER_FILE, [payment("p1", amount="30.00")], delivered(2))
    project.deliver(FILE, [payment("p1", amount="10.00")], delivered(2))
    # the same instant written differently: two raw rows, ordered by _delivered_at, _delivery_seq
    project.deliver(LATER_FILE.replace("01_02", "02_02"), [payment("p2", amount="2.00")], delivered(2))
    project.deliver(
        FILE.replace("01_01", "02_01"),
        [payment("p2", amount="1.00", updated_at="2024-03-01T12:30:00+00:00")],
        delivered(2),
    )
    load_payments(project)

    assert amounts(project)["p1"] == Decimal("30.00")  # same run, equal mtimes: the later path
    assert Decimal(winner(project, "p2")) == Decimal("2.00")

    # a later run sees a new file with the very same mtime: it was delivered after the others
    project.deliver("payments_20240301_00.csv", [payment("p1", amount="40.00")], delivered(2))
    project.deliver(
        "payments_20240302_00.csv",
        [payment("p2", amount="3.00", updated_at="2024-03-01T12:30:00.000Z")],
        delivered(2),
    )
    load_payments(project)

    assert amounts(project)["p1"] == Decimal("40.00")
    assert Decimal(winner(project, "p2")) == Decimal("3.00")


def test_two_thousand_files_are_listed_and_skipped_without_reading(project) -> None:
    for number in range(2000):
        day, seq = divmod(number, 100)
        project.deliver(f"payments_202401{day + 1:02d}_{seq:02d}.csv", [payment(f"p{number}")], delivered(1))
    assert load_payments(project).landed == 2000

    second = load_payments(project)

    assert second.extracted == 0
    assert project.scalar("select count(*) from raw_payments_files.payments") == 2000

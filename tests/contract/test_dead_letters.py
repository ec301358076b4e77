"""Dead letters an engineer can work (`elt dead-letters`, `elt dead-letters replay`), on both warehouses.

The listing shows every record the loaders could not land with its source, location and error; a replay
lands again, through the loaders' own landing path, those whose raw text lands now (after a loader fix) or
whose corrected text the engineer supplies, marks them resolved with when and how, and builds what they
touched — the canonical table then has them — while the dead letter itself stays in raw. A record that
still fails stays open with the reason; a second replay does nothing; `elt status` counts the open ones.
With split roles (PostgreSQL, `elt grants`) the loader, which lands the records again, may add resolutions
but never change or delete one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loaders.cli import main
from loaders.core.outcomes import ExitCode
from loaders.core.registry import SOURCE_NAMES
from loaders.landing import records
from loaders.landing.pipelines import cursor_positions
from loaders.ops.grants import Roles, apply_grants
from loaders.ops.status import collect
from loaders.simulate import SimulationConfig, generate
from loaders.warehouse import connect
from tests.support.cli import elt
from tests.support.project import Project
from tests.support.runbook import Runbook

pytestmark = pytest.mark.warehouses("postgres")

DEAD_LETTERS = "Work the dead letters"

# damaged API versions and settlement rows on day one; no invalid records, so every canonical row is clean
WORLD = SimulationConfig(seed=23, customers=20, orders_per_day=40, invalid_rate=0.0, damaged_rate=0.08)


def listed(*options: str) -> Any:
    proc = elt("dead-letters", "--json", *options)
    assert proc.returncode == ExitCode.OK, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def replayed(*options: str) -> tuple[int, str]:
    """`elt dead-letters replay`: its exit code and stdout (stderr's tail too when it did not exit 0)."""
    proc = elt("dead-letters", "replay", *options)
    return proc.returncode, proc.stdout + ("" if proc.returncode == 0 else proc.stderr[-3000:])


def replayed_in_process(capfd: pytest.CaptureFixture[str], **options: Any) -> tuple[int, str]:
    code = main(["dead-letters", "replay", *(f"--{name}={value}" for name, value in options.items())])
    return code, capfd.readouterr().out


def raw_dead_letters(project: Project) -> int:
    return sum(project.scalar(f"select count(*) from raw_{source}.dead_letters") for source in SOURCE_NAMES)


def completed_loads(project: Project, source: str) -> int:
    return project.scalar(f"select count(*) from raw_{source}._dlt_loads where status = 0")


def open_in_status() -> dict[str, int | None]:
    proc = elt("status", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    return {source["source"]: source["dead_letters_open"] for source in document["sources"]}


def test_dead_letters_are_listed_and_a_corrected_record_lands_once(
    project: Project, tmp_path: Path, runbook: Runbook
) -> None:
    generate(project.root, WORLD, through_day=1)
    code, line = project.elt_run()
    assert code == ExitCode.OK, line

    # the listing: every damaged record, with where it came from and why it did not land
    document = listed()
    letters = document["dead_letters"]
    assert len(letters) == raw_dead_letters(project) > 0
    by_source: dict[str, list[dict[str, Any]]] = {}
    for letter in letters:
        by_source.setdefault(letter["source"], []).append(letter)
        assert letter["location"] and letter["error"] and letter["raw_text"] and not letter["resolved"]
        assert 0 <= letter["age_hours"] < 1
    assert {"shop_api", "payments_files"} <= set(by_source), letters
    assert document["open"] == {source: len(by_source.get(source, [])) for source in SOURCE_NAMES}
    assert all(" line " in letter["location"] for letter in by_source["payments_files"])
    assert open_in_status() == document["open"]
    ageless = [{**letter, "age_hours": None} for letter in by_source["payments_files"]]  # the clock moved on
    assert [{**letter, "age_hours": None} for letter in listed("--source", "payments_files")["dead_letters"]] == ageless

    proc = runbook.run(DEAD_LETTERS, tmp_path)  # the runbook's `elt dead-letters`: every id and location in full
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    for letter in letters:
        assert letter["dead_letter_id"] in table and letter["location"] in table

    # one that still fails stays open and says why; nothing lands, nothing is marked
    hopeless = by_source["shop_api"][0]
    loads_before = completed_loads(project, "shop_api")
    code, out = replayed("--id", hopeless["dead_letter_id"])
    assert code == ExitCode.LOAD_FAILED, out
    assert f"still fails: {hopeless['dead_letter_id']}" in out, out
    assert completed_loads(project, "shop_api") == loads_before
    assert listed()["open"] == document["open"]

    # corrections for one order and one settlement row, in each source's own format
    order, payment = by_source["shop_api"][-1], by_source["payments_files"][0]
    (customer_id,) = project.query("select customer_id from analytics.customers order by customer_id limit 1")[0]
    corrected_order = {
        "id": "o_corrected_1",
        "customer_id": customer_id,
        "status": "paid",
        "currency": "EUR",
        "shipping_country": "DE",
        "created_at": "2024-03-01T09:00:00Z",
        "updated_at": "2024-03-01T09:30:00Z",
        "items": [{"line": 1, "sku": "SKU-0001", "quantity": 2, "unit_price": "10.00"}],
    }
    corrected_line = "p_corrected_1,o_corrected_1,20.00,EUR,card,succeeded,2024-03-01T09:31:00Z,2024-03-01T09:31:00Z"
    corrections = tmp_path / "corrections.json"
    corrections.write_text(
        json.dumps({order["dead_letter_id"]: json.dumps(corrected_order), payment["dead_letter_id"]: corrected_line})
    )

    code, out = replayed("--corrected", str(corrections), "--dry-run")
    assert code == ExitCode.OK and "corrected=2" in out and "nothing written" in out, out
    assert project.scalar("select count(*) from raw_shop_api.orders where id = 'o_corrected_1'") == 0

    started = datetime.now(UTC)
    last_loads = {source.source: source.last_load_at for source in collect(project.settings, ["shop_api"]).sources}
    cursors = {source: cursor_positions(project.settings, source) for source in SOURCE_NAMES}
    replay = runbook.run(DEAD_LETTERS, tmp_path)  # the runbook's: corrections.json in the current folder
    code, out = replay.returncode, replay.stdout
    assert code == ExitCode.OK, out
    assert "relanded=0 corrected=2 still_failing=0" in out, out

    # canonical after the build; the raw rows look like the loaders' own; the dead letters are still in raw
    assert project.scalar("select order_total from analytics.orders where order_id = 'o_corrected_1'") == 20
    assert project.scalar("select amount from analytics.payments where payment_id = 'p_corrected_1'") == 20
    version, version_at, delivered_at, record = project.query(
        "select _version, _version_at, _delivered_at, _record from raw_shop_api.orders where id = 'o_corrected_1'"
    )[0]
    assert version == "2024-03-01T09:30:00Z" and version_at.year == 2024 and delivered_at >= started
    assert json.loads(record) == corrected_order
    source_file = payment["location"].rsplit(" line ", 1)[0]
    assert project.query(
        "select _source_file, _version from raw_payments_files.payments where payment_id = 'p_corrected_1'"
    ) == [(source_file, "2024-03-01T09:31:00Z")]
    assert raw_dead_letters(project) == len(letters)
    # landed by a pipeline of its own, under its own dlt schema: the source's freshness is not its doing
    assert project.query("select schema_name from raw_shop_api._dlt_loads order by load_id desc limit 1") == [
        ("elt_shop_api_dead_letters",)
    ]
    assert {s.source: s.last_load_at for s in collect(project.settings, ["shop_api"]).sources} == last_loads
    assert {source: cursor_positions(project.settings, source) for source in SOURCE_NAMES} == cursors  # and manifest

    # resolved: when, how, by which load and run
    resolutions = project.query(
        "select r.dead_letter_id, r.how, r.source, r.resolved_at >= runs.started_at, runs.command, runs.status"
        " from ops.dead_letter_resolutions as r join ops.elt_runs as runs using (run_id) order by r.source"
    )
    assert resolutions == [
        (payment["dead_letter_id"], "corrected", "payments_files", True, "dead-letters replay", "ok"),
        (order["dead_letter_id"], "corrected", "shop_api", True, "dead-letters replay", "ok"),
    ]
    after = listed()
    expected_open = {**document["open"]}
    expected_open["shop_api"] -= 1
    expected_open["payments_files"] -= 1
    assert after["open"] == expected_open
    assert open_in_status() == expected_open
    history = {letter["dead_letter_id"]: letter for letter in listed("--all")["dead_letters"]}
    assert len(history) == len(letters)
    assert history[order["dead_letter_id"]]["how"] == "corrected"

    # twice: nothing more lands, nothing more is marked; replaying every open one lands none of them
    loads = {source: completed_loads(project, source) for source in SOURCE_NAMES}
    code, out = replayed("--corrected", str(corrections))
    assert code == ExitCode.OK and "corrected=0" in out and "already_resolved=2" in out, out
    code, out = replayed()
    assert code == ExitCode.OK and "relanded=0 corrected=0" in out, out
    assert {source: completed_loads(project, source) for source in SOURCE_NAMES} == loads
    assert project.scalar("select count(*) from ops.dead_letter_resolutions") == 2

    # the next run dead-letters the re-served damaged records again: the resolved ones stay resolved
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    assert listed()["open"] == expected_open
    assert project.scalar("select count(*) from analytics.orders where order_id = 'o_corrected_1'") == 1


def test_a_dead_letter_that_lands_after_a_loader_fix_is_relanded(
    project: Project, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The "fix": the longest natural key allowed is raised. That replay runs in process, so it runs the fixed
    code; every other command runs as a user runs it."""
    generate(project.root, SimulationConfig(seed=29, customers=10, orders_per_day=10, damaged_rate=0.0), through_day=1)
    long_id = "c_" + "x" * (records.MAX_KEY_BYTES + 100)
    project.app_db.upsert_customer(
        id=long_id,
        email="long@example.com",
        full_name="Long Key",
        country="DE",
        created_at="2024-03-01 08:00:00",
        updated_at="2024-03-01 08:00:00",
    )
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    (letter,) = listed()["dead_letters"]
    assert (letter["source"], letter["resource"]) == ("app_db", "customers")
    assert "longer than" in letter["error"]

    code, out = replayed()  # unfixed: still fails, stays open (not named, so not an error)
    assert code == ExitCode.OK and "still_failing=1" in out and "longer than" in out, out
    assert project.scalar("select count(*) from ops.dead_letter_resolutions") == 0

    monkeypatch.setattr(records, "MAX_KEY_BYTES", 4 * records.MAX_KEY_BYTES)
    code, out = replayed_in_process(capfd, source="app_db")
    assert code == ExitCode.OK and "relanded=1" in out, out
    assert project.scalar(f"select email from analytics.customers where customer_id = '{long_id}'") == (
        "long@example.com"
    )
    assert project.query("select how from ops.dead_letter_resolutions") == [("relanded",)]
    assert listed()["open"] == dict.fromkeys(SOURCE_NAMES, 0)
    assert project.scalar("select count(*) from raw_app_db.dead_letters") == 1

    code, out = replayed("--id", letter["dead_letter_id"])
    assert code == ExitCode.OK and "already_resolved=1" in out, out
    assert project.scalar("select count(*) from ops.dead_letter_resolutions") == 1


@pytest.fixture
def split_roles(project: Project) -> Iterator[Roles]:
    suffix = uuid.uuid4().hex[:8]
    roles = Roles(f"elt_loader_{suffix}", f"elt_transformer_{suffix}", f"elt_reader_{suffix}")
    yield roles
    with connect(project.settings, read_only=False) as conn:  # roles belong to the whole server
        cursor = conn.cursor()
        for name in (roles.loader, roles.transformer, roles.reader):
            cursor.execute("select count(*) from pg_roles where rolname = %s", (name,))
            if cursor.fetchone()[0]:
                cursor.execute(f"drop owned by {name} cascade")
                cursor.execute(f"drop role {name}")


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_the_loader_role_may_add_resolutions_and_never_change_one(project: Project, split_roles: Roles) -> None:
    apply_grants(project.settings, split_roles)
    privileges = ("select", "insert", "update", "delete", "truncate")
    granted = {
        privilege: project.scalar(
            f"select has_table_privilege('{split_roles.loader}', 'ops.dead_letter_resolutions', '{privilege}')"
        )
        for privilege in privileges
    }
    assert granted == {"select": True, "insert": True, "update": False, "delete": False, "truncate": False}
    owner = "select tableowner from pg_tables where schemaname = 'ops' and tablename = 'dead_letter_resolutions'"
    assert project.scalar(owner) == split_roles.transformer

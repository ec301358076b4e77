"""A run's books, on both warehouses: per source, the records the source handed over equal those landed,
dead-lettered and collapsed (the same version twice in one extraction); per entity, the versions landed equal
the canonical rows, the open quarantine rows and the superseded versions. Over a multi-day history with every
kind of bad input they balance, run after run; a record lost between the source and raw, or a canonical row
lost behind dbt's back, makes the run exit BOOKS_UNBALANCED naming the book and the difference.
"""

from __future__ import annotations

import json

import pyarrow as pa

from loaders.core.outcomes import ExitCode
from loaders.core.registry import ENTITIES, SOURCE_NAMES
from loaders.landing.batch import Batch
from loaders.ops.dbt import run_dbt
from loaders.simulate import SimulationConfig, generate
from loaders.warehouse import connect
from tests.support.cli import elt
from tests.support.project import Project

WORLD = SimulationConfig(
    seed=17,
    customers=30,
    orders_per_day=40,
    invalid_rate=0.15,
    damaged_rate=0.05,
    late_version_rate=0.2,
    late_dimension_rate=0.2,
    redelivery_rate=0.3,
    late_file_rate=0.3,
)


def books(project: Project, run_id: str) -> dict[str, tuple[str, int, dict[str, int], int]]:
    rows = project.query(
        f"select book, total_name, total, parts, difference from ops.elt_run_books where run_id = '{run_id}'"
    )
    return {book: (name, total, json.loads(parts), difference) for book, name, total, parts, difference in rows}


def test_the_books_balance_run_after_run_over_a_messy_history(project: Project) -> None:
    for day in (1, 2, 3):
        generate(project.root, WORLD, through_day=day)
        code, line = project.elt_run()
        assert code == ExitCode.OK, line
    runs = [run_id for (run_id,) in project.query("select run_id from ops.elt_runs order by started_at")]
    assert len(runs) == 3
    for run_id in runs:
        kept = books(project, run_id)
        expected = {f"{source} records" for source in SOURCE_NAMES} | {f"{e.name} versions" for e in ENTITIES}
        assert set(kept) == expected, kept
        for book, (_, total, parts, difference) in kept.items():
            assert difference == 0 and total == sum(parts.values()), (book, total, parts)
    # the last run's entity books, against counts this test makes itself
    last = books(project, runs[-1])
    for entity in ENTITIES:
        raw = project.scalar(
            f"select count(*) from (select distinct {entity.raw_key}, _version"
            f" from raw_{entity.source}.{entity.raw_table}) as versions"
        )
        _, landed, parts, _ = last[f"{entity.name} versions"]
        assert landed == raw > 0, entity
        assert parts["canonical"] == project.scalar(f"select count(*) from analytics.{entity.name}")
    assert last["orders versions"][2]["superseded"] > 0  # the history really has several versions per key
    shown = json.loads(elt("status", "--json").stdout)["books"]  # `elt status` shows the last run's books
    assert {b["book"]: (b["total_name"], b["total"], b["parts"], b["difference"]) for b in shown} == last
    first = books(project, runs[0])
    assert first["shop_api records"][1] > 0 and first["payments_files records"][2]["dead_lettered"] > 0


def test_a_canonical_row_lost_behind_dbts_back_unbalances_the_orders_book(project: Project) -> None:
    generate(project.root, WORLD, through_day=1)
    for _ in range(2):  # the second run re-reads only the cursor's lag: the orders it re-lands are known
        code, line = project.elt_run()
        assert code == ExitCode.OK, line
    (order_id,) = project.query(
        "select order_id from analytics.orders where order_id not in (select id from raw_shop_api.orders"
        " where _dlt_load_id = (select max(load_id) from raw_shop_api._dlt_loads)) order by order_id limit 1"
    )[0]
    with connect(project.settings, read_only=False) as conn:
        conn.cursor().execute(f"delete from analytics.orders where order_id = '{order_id}'")

    code, line = project.elt_run()  # nothing new: no model is built, the books are still balanced

    # the books see it; the data tests, reading what a build writes, do not
    assert code == ExitCode.BOOKS_UNBALANCED, line
    assert "books do not balance: orders versions: landed" in line and "off by +1" in line, line
    run_id = project.scalar("select run_id from ops.elt_runs order by started_at desc limit 1")
    assert books(project, run_id)["orders versions"][3] == 1
    assert {book for book, (*_, difference) in books(project, run_id).items() if difference} == {"orders versions"}
    # dbt's own "latest version is canonical or open" test sees it too when it reads whole tables
    whole = run_dbt(project.settings, ["test", "--select", "latest_version_is_canonical_or_open_in_quarantine"])
    assert set(whole.statuses.values()) == {"fail"}, whole.statuses


def test_a_record_lost_between_the_source_and_raw_unbalances_its_source_book(project: Project, monkeypatch) -> None:
    generate(project.root, WORLD, through_day=1)
    landed_table = Batch._landed_table

    def losing_one(self: Batch) -> pa.Table:  # a defect that drops the first record of each API batch
        table = landed_table(self)
        return table.slice(1) if self.source == "shop_api" and table.num_rows > 1 else table

    monkeypatch.setattr(Batch, "_landed_table", losing_one)
    code, line = project.elt_run()

    assert code == ExitCode.BOOKS_UNBALANCED, line
    run_id = project.scalar("select run_id from ops.elt_runs order by started_at desc limit 1")
    kept = books(project, run_id)
    lost = kept["shop_api records"][3]
    assert lost > 0, kept
    assert f"shop_api records: extracted {kept['shop_api records'][1]}" in line and f"off by +{lost}" in line
    assert kept["app_db records"][3] == kept["payments_files records"][3] == 0

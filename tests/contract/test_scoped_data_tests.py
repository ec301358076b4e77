"""Issue 19: a build's data tests read the rows that build wrote, and the whole tables on demand.

A `dbt build` (the harness's, or a plain one) tests the rows it wrote: a bad row it wrote fails its test,
a bad row an earlier run left, which this one did not touch, is not read (the compiled SQL of the test
names only this invocation's batches, loads and keys); `dbt test`, `--vars '{elt_tests: all}'` and
`--full-refresh` read the whole tables and fail on it (macros/test_scope.sql).

The bad rows are planted by hand, as a bug of a model would leave them: the tests of the project must
catch them whichever run wrote them, given the right command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from loaders.ops.dbt import harness_target_path, run_dbt
from tests.contract.records import customer, delivered, order, payment

# the data tests of tables that are neither incremental nor large (the seeds, ops.dead_letters): read whole
WHOLE_ALWAYS = {
    f"{test}_{table}_{column}"
    for test in ("unique", "not_null")
    for table, column in (
        ("countries", "country_code"),
        ("currencies", "currency_code"),
        ("dead_letters", "dead_letter_id"),
    )
}


@dataclass(frozen=True)
class DataTest:
    status: str
    failures: int | None
    sql: str  # compiled, on one line

    @property
    def filtered(self) -> bool:
        """Whether it reads what this invocation wrote (macros/test_scope.sql), or the whole table."""
        return any(mark in self.sql for mark in ("as written where", "written_batch", "1 = 0"))


def dbt(project: Any, command: str, *args: str, tests: str = "auto") -> tuple[str, dict[str, DataTest]]:
    """`dbt build` or `dbt test` without the safety margin: the invocation id and each data test's result."""
    extra = ["--exclude-resource-type", "unit_test"] if command == "build" else []
    outcome = run_dbt(project.settings, [command, *extra, *args], dbt_vars={"elt_tests": tests})
    results = json.loads((harness_target_path(project.settings) / "run_results.json").read_text())
    assert results["metadata"]["invocation_id"] == outcome.invocation_id
    tests_run = {
        r["unique_id"].split(".")[2]: DataTest(r["status"], r["failures"], " ".join((r["compiled_code"] or "").split()))
        for r in results["results"]
        if r["unique_id"].startswith("test.")
    }
    return str(outcome.invocation_id), tests_run


def failing(tests_run: dict[str, DataTest]) -> dict[str, int | None]:
    return {name: run.failures for name, run in tests_run.items() if run.status in ("fail", "error")}


def copy_rows(project: Any, relation: str, where: str, **replaced: str) -> None:
    """Insert copies of `relation`'s rows matching `where`, with some columns replaced by SQL expressions."""
    columns = project.columns(relation)
    assert set(replaced) <= set(columns), replaced
    listed = ", ".join(columns)
    values = ", ".join(replaced.get(column, column) for column in columns)
    project.execute(f"insert into {relation} ({listed}) select {values} from {relation} where {where}")


def new_load(project: Any, source: str) -> str:
    """A completed load of `source` with no rows yet: its id, greater than any landed."""
    loads = f"raw_{source}._dlt_loads"
    newest = max(float(row[0]) for row in project.query(f"select load_id from {loads}"))
    load_id = f"{newest + 1:.6f}"
    copy_rows(project, loads, f"load_id = (select max(load_id) from {loads})", load_id=f"'{load_id}'", status="0")
    return load_id


def test_a_build_reads_what_it_wrote_and_not_what_earlier_runs_left(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.app_db.upsert_customer(**customer("c2"))
    project.api_store.add(order("o1"))
    project.api_store.add(order("o2", customer_id="c2"))
    project.api_store.add(order("o_bad", status="lost"))
    project.deliver("payments_20240301_01.csv", [payment("p1")], delivered(2))
    project.run()

    # what earlier runs "wrote" wrong, by hand: one bad row in each layer, on keys the next run does not touch
    copy_rows(project, "raw_shop_api.orders", "id = 'o1'")  # o1's version twice in its load
    copy_rows(project, "staging.int_orders__versions", "order_id = 'o1'")
    copy_rows(project, "analytics.orders", "order_id = 'o1'")
    copy_rows(project, "analytics.order_items", "order_id = 'o1'")
    copy_rows(project, "analytics.daily_revenue", "1 = 1")  # the one date, 2024-03-01
    copy_rows(project, "quarantine.orders", "order_id = 'o_bad'", version_key="'planted'")  # two open rows
    project.execute("delete from analytics.customers where customer_id = 'c2'")  # lost, and o2 names it
    whole_table_failures = {
        "unique_combination_stg_shop_api__orders_order_id__version_key__load_id": 1,
        "unique_combination_int_orders__versions_order_id__version_key": 1,
        "unique_orders_order_id": 1,
        "unique_combination_order_items_order_id__line_number": 1,
        "unique_combination_daily_revenue_revenue_date__currency": 1,
        "one_open_quarantine_row_per_key": 1,
        "latest_version_is_canonical_or_open_in_quarantine": 1,
        "relationships_orders_customer_id__customer_id__ref_customers_": 1,
    }

    # the change: a new order of c1 and its payment, on another date
    project.api_store.add(order("o3", created_at="2024-03-05T10:00:00Z", updated_at="2024-03-05T12:00:00Z"))
    project.deliver(
        "payments_20240305_01.csv",
        [payment("p3", order_id="o3", paid_at="2024-03-05T12:30:00Z", updated_at="2024-03-05T12:30:00Z")],
        delivered(6),
    )
    project.load()
    invocation, tests_run = dbt(project, "build")

    assert failing(tests_run) == {}
    for name, run in tests_run.items():
        assert run.filtered == (name not in WHOLE_ALWAYS), name
    # the new order's rows, by the key this invocation's batch wrote; the new load's rows; the new date
    assert f"batch_id in ('{invocation}')" in tests_run["unique_orders_order_id"].sql
    assert f"batch_id in ('{invocation}')" in tests_run["one_open_quarantine_row_per_key"].sql
    newest_load = project.scalar("select max(load_id) from raw_shop_api._dlt_loads")
    assert (
        f"load_id in ('{newest_load}')"
        in tests_run["unique_combination_stg_shop_api__orders_order_id__version_key__load_id"].sql
    )
    assert "revenue_date in (select" in tests_run["unique_combination_daily_revenue_revenue_date__currency"].sql
    # customers: nothing written, nothing read
    assert "1 = 0" in tests_run["unique_customers_customer_id"].sql

    # the whole tables: `dbt test`, and on demand in a build
    assert failing(dbt(project, "test")[1]) == whole_table_failures
    _, tests_run = dbt(project, "build", tests="all")
    assert not any(run.filtered for run in tests_run.values())
    assert failing(tests_run) == {"unique_combination_stg_shop_api__orders_order_id__version_key__load_id": 1}

    # nothing new: every filtered test reads nothing, whatever the tables hold
    _, tests_run = dbt(project, "build")
    assert failing(tests_run) == {}
    for name, run in tests_run.items():
        if name not in WHOLE_ALWAYS:
            assert "1 = 0" in run.sql and "batch_id in" not in run.sql, name


def test_what_a_build_writes_wrong_its_tests_catch(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.api_store.add(order("o2"))
    project.run()
    copy_rows(project, "analytics.orders", "order_id = 'o1'")  # an earlier run's duplicate, never touched again

    # A batch of int_orders__versions that the canonical and quarantine models have not consumed yet (as
    # one whose build stopped before them leaves), broken: two canonical versions of o_twice, two open
    # failing ones of o_bad_twice.
    batch = "planted-batch"
    for key, failed_rules in (("o_twice", "''"), ("o_bad_twice", "'invalid_status'")):
        for version in ("v1", "v2"):
            copy_rows(
                project,
                "staging.int_orders__versions",
                "order_id = 'o2'",
                order_id=f"'{key}'",
                version_key=f"'{version}'",
                failed_rules=failed_rules,
                is_latest="true",
                is_last_good="true" if failed_rules == "''" else "false",
                batch_id=f"'{batch}'",
            )
    project.execute(
        "insert into ops.dbt_batches (producer, batch_id, batch_seq, rules_fingerprint, published_at)"
        f" select producer, '{batch}', max(batch_seq) + 1, max(rules_fingerprint), max(published_at)"
        " from ops.dbt_batches where producer = 'int_orders__versions' group by producer"
    )

    # the build writes them into the canonical and quarantine tables, and its tests of those rows fail;
    # the old duplicate of o1 is not read (one failure, o_twice)
    _, tests_run = dbt(project, "build")
    assert failing(tests_run) == {
        "unique_orders_order_id": 1,
        "unique_combination_order_items_order_id__line_number": 1,
        "one_open_quarantine_row_per_key": 1,
    }
    assert f"batch_id in ('{batch}')" in tests_run["unique_orders_order_id"].sql  # consumed in this invocation

    # --full-refresh rebuilds from the landed versions, and tests the whole tables: all clean again
    _, tests_run = dbt(project, "build", "--full-refresh")
    assert not any(run.filtered for run in tests_run.values())
    assert failing(tests_run) == {}

    # a new load with o1's version twice: staging's test of the load fails, the intermediate model waits
    load_id = new_load(project, "shop_api")
    for _ in range(2):
        copy_rows(
            project, "raw_shop_api.orders", f"id = 'o1' and _dlt_load_id <> '{load_id}'", _dlt_load_id=f"'{load_id}'"
        )
    _, tests_run = dbt(project, "build")
    assert failing(tests_run) == {"unique_combination_stg_shop_api__orders_order_id__version_key__load_id": 1}
    assert tests_run["unique_combination_int_orders__versions_order_id__version_key"].status == "skipped"

    # once: a re-delivery of the version o1 already has, in another load; staging holds it twice (one
    # per load), the intermediate model writes it twice, and its test of what it wrote fails
    project.execute(f"delete from raw_shop_api.orders where _dlt_load_id = '{load_id}'")
    copy_rows(project, "raw_shop_api.orders", "id = 'o1'", _dlt_load_id=f"'{load_id}'")
    invocation, tests_run = dbt(project, "build")
    assert failing(tests_run) == {"unique_combination_int_orders__versions_order_id__version_key": 1}
    assert (
        f"batch_id in ('{invocation}')"
        in tests_run["unique_combination_int_orders__versions_order_id__version_key"].sql
    )


def test_a_warehouse_built_before_gets_the_consuming_invocation_recorded(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.run()
    project.execute("alter table ops.dbt_consumed drop column invocation_id")  # as every build before made it

    project.api_store.add(order("o2"))
    project.load()
    invocation, tests_run = dbt(project, "build")

    assert failing(tests_run) == {}
    consumed = project.query(
        f"select consumer from ops.dbt_consumed where invocation_id = '{invocation}'"
        " and producer = 'int_orders__versions'"
    )
    assert {"orders", "order_items", "quarantined_orders"} <= {consumer for (consumer,) in consumed}
    assert f"batch_id in ('{invocation}')" in tests_run["unique_orders_order_id"].sql

"""Contract 2.1 "a function of the landed data", over a multi-day simulated story.

Five simulated days (late versions, late and re-delivered files, damaged rows, late customers, invalid
records, API faults), one `elt run` per day with no lookback (`lookback_versions: 0`) so the incremental
path alone does the work; then `dbt build --full-refresh` must leave the canonical tables and the open quarantine rows
exactly as the incremental runs left them, and every landed version must be accounted for.
"""

from __future__ import annotations

import pytest

from loaders.ops.dbt import run_dbt
from loaders.simulate import FaultPlan, SimulationConfig, generate
from tests.contract.records import assert_full_refresh_reproduces
from tests.support.project import Project

pytestmark = pytest.mark.warehouses("duckdb", "postgres")

STORY = SimulationConfig(
    seed=11,
    customers=20,
    new_customers_per_day=4,
    orders_per_day=30,
    update_rate=0.3,
    late_version_rate=0.15,
    invalid_rate=0.08,
    damaged_rate=0.03,
    late_dimension_rate=0.15,
    redelivery_rate=0.3,
    late_file_rate=0.3,
)
DAYS = 5

ENTITIES = (
    ("raw_app_db.customers", "id", "staging.int_customers__versions"),
    ("raw_app_db.products", "sku", "staging.int_products__versions"),
    ("raw_shop_api.orders", "id", "staging.int_orders__versions"),
    ("raw_payments_files.payments", "payment_id", "staging.int_payments__versions"),
)


def test_story_incremental_runs_equal_a_full_refresh(warehouse, tmp_path, monkeypatch) -> None:
    faults = FaultPlan(sequence=["429", "503", "ok", "500"])
    with Project.started(warehouse, tmp_path, monkeypatch, faults=faults) as project:
        summaries = []
        for day in range(1, DAYS + 1):
            summaries.append(generate(project.root, STORY, through_day=day))
            project.run(lookback_versions=0)

        story = summaries[-1]
        assert story.late_versions and story.late_files and story.redelivered_files and story.invalid_records
        assert project.api is not None and project.api.requests_served > DAYS  # the faults were retried

        # every landed version was evaluated, and the singular data tests (one open row per key; each
        # key's latest version canonical or open) passed in every build above
        for raw, key, versions in ENTITIES:
            # every landed (key, version), counted once: Spark's lake keeps a re-delivery as a second raw row
            landed = project.scalar(f"select count(*) from (select distinct {key}, _version from {raw}) as landed")
            assert landed > 0
            assert project.scalar(f"select count(*) from {versions}") == landed, raw
            assert project.scalar(f"select count(distinct {key}) from {raw}") > 0

        assert_full_refresh_reproduces(project)
        # the sources were just loaded: dbt's freshness check (warn 24 h, error 72 h) passes on both warehouses
        assert run_dbt(project.settings, ["source", "freshness"]).returncode == 0

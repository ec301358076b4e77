"""The dbt unit tests (rule logic, last good, the incremental release path) pass on both warehouses.

dbt unit tests need their models to exist, so the models are first created empty (`dbt run --empty`)
over raw tables the loaders create from empty sources.
"""

from __future__ import annotations

import pytest

from loaders.ops.dbt import run_dbt

pytestmark = pytest.mark.warehouses("duckdb", "postgres")


def test_dbt_unit_tests_pass(project) -> None:
    project.load()  # empty sources: creates the raw tables, no rows
    assert run_dbt(project.settings, ["seed"]).returncode == 0
    assert run_dbt(project.settings, ["run", "--empty"]).returncode == 0

    outcome = run_dbt(project.settings, ["test", "--select", "test_type:unit"])

    assert outcome.returncode == 0, outcome.statuses
    unit_tests = {uid: status for uid, status in outcome.statuses.items() if uid.startswith("unit_test.")}
    assert len(unit_tests) == 3 and set(unit_tests.values()) == {"pass"}, unit_tests

"""A crash never costs a run: the next load finishes what the crashed one left behind *and* lands what
arrived since, in the same call, and a history of kills loses no version any source served.

The kill matrix runs loads in child processes SIGKILLed at exact dlt steps of the new extract: after
extract (the package is extracted, not normalized), after normalize (normalized, not loaded), during
load (the staging tables are filled, the merge into raw is about to run), and in the gap between a load
job's commit and dlt recording it done (the state row is in the warehouse, the job will run again).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from loaders.core.registry import PROJECT_DIR
from loaders.landing.pipelines import pipeline
from loaders.sources import spec
from tests.contract.records import customer, delivered, order, payment
from tests.support.project import SOURCES, Project, land

pytestmark = pytest.mark.warehouses("postgres")

RAW_TABLES = {
    "shop_api": {"raw_shop_api.orders": "id"},
    "app_db": {"raw_app_db.customers": "id", "raw_app_db.products": "sku"},
    "payments_files": {"raw_payments_files.payments": "payment_id"},
}
KILL_POINTS = ("extract", "normalize", "load", "state_committed")

Versions = dict[str, set[tuple[str, str]]]


def product(sku: str, updated_at: str) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": sku.title(),
        "category": "tools",
        "list_price": "9.90",
        "currency": "EUR",
        "active": 1,
        "updated_at": updated_at,
    }


def change_every_source(project: Project, step: int) -> Versions:
    """New customers, products, orders and a payments file, new versions of old keys, and a corrected
    re-delivery of the previous step's file. Returns the (key, version) pairs the sources now serve
    for the first time."""
    day = f"2024-03-{step + 1:02d}"
    db_time, api_time = f"{day} 09:00:00", f"{day}T12:00:00Z"
    project.app_db.upsert_customer(**customer(f"c{step}", created_at=db_time, updated_at=db_time))
    project.app_db.upsert_customer(**customer("c0", updated_at=db_time, full_name=f"C0 step {step}"))
    project.app_db.upsert_product(**product(f"SKU-{step}", db_time))
    project.api_store.add_many(
        [order(f"o{step}", updated_at=api_time), order("o0", updated_at=api_time, status=f"step{step}")]
    )
    paid = f"{day}T12:30:00Z"
    project.deliver(payments_file(step), [payment(f"p{step}", paid_at=paid, updated_at=paid)], delivered_on(step))
    served: Versions = {
        "raw_app_db.customers": {(f"c{step}", db_time), ("c0", db_time)},
        "raw_app_db.products": {(f"SKU-{step}", db_time)},
        "raw_shop_api.orders": {(f"o{step}", api_time), ("o0", api_time)},
        "raw_payments_files.payments": {(f"p{step}", paid)},
    }
    if step > 0:
        refunded = f"{day}T13:00:00Z"
        rows = [payment(f"p{step - 1}", status="refunded", updated_at=refunded)]
        project.deliver(payments_file(step - 1), rows, delivered_on(step, hour=7))
        served["raw_payments_files.payments"].add((f"p{step - 1}", refunded))
    return served


def payments_file(step: int) -> str:
    return f"payments_202403{step + 1:02d}_01.csv"


def delivered_on(step: int, hour: int = 6) -> Any:
    return delivered(step + 2, hour)


def raw_versions(project: Project) -> Versions:
    return {
        table: set(project.query(f"select {key}, _version from {table}"))
        for tables in RAW_TABLES.values()
        for table, key in tables.items()
    }


def raw_contents(project: Project) -> dict[str, list[tuple[Any, ...]]]:
    """Every raw row as (key, version, whole record), and no (key, version) twice."""
    contents = {}
    for tables in RAW_TABLES.values():
        for table, key in tables.items():
            rows = sorted(project.query(f"select {key}, _version, _record from {table}"))
            assert len(rows) == len({row[:2] for row in rows}), f"a version landed twice in {table}"
            contents[table] = rows
    return contents


def assert_landed(project: Project, *expected: Versions) -> None:
    landed = raw_versions(project)
    for versions in expected:
        for table, pairs in versions.items():
            assert pairs <= landed[table], f"{table} misses {sorted(pairs - landed[table])}"


def assert_not_landed(project: Project, versions: Versions) -> None:
    landed = raw_versions(project)
    for table, pairs in versions.items():
        assert not pairs & landed[table], f"{table} already holds {sorted(pairs & landed[table])}"


def leave_package_behind(project: Project, source: str, left_at: str) -> None:
    """What a run killed before its load leaves: the package in dlt's local folder, not in raw."""
    pipe = pipeline(project.settings, source)
    pipe.extract(spec(source).dlt_source())
    if left_at == "normalized":
        pipe.normalize()


@pytest.mark.parametrize("left_at", ["extracted", "normalized"])
def test_one_load_lands_the_package_left_behind_and_what_arrived_since(project, left_at) -> None:
    change_every_source(project, 0)
    project.load()
    pending = change_every_source(project, 1)
    for source in SOURCES:
        leave_package_behind(project, source, left_at)
    assert_not_landed(project, pending)
    arrived = change_every_source(project, 2)

    for source in SOURCES:
        report = land(project.settings, source)

        assert report.resumed_packages == 1, source
        new_load_ids = set(report.load_ids) - set(report.resumed_load_ids)
        assert new_load_ids, f"{source}: nothing extracted after the resume"
        served = sum(len(pending[t]) + len(arrived[t]) for t in RAW_TABLES[source])
        assert report.landed >= served, source

    assert_landed(project, pending, arrived)
    assert ("o2", "2024-03-03T12:00:00Z") in raw_versions(project)["raw_shop_api.orders"]
    assert ("p1", "2024-03-03T13:00:00Z") in raw_versions(project)["raw_payments_files.payments"]


def killed_load(source: str, kill_at: str) -> None:
    """Run in a child process: `load_source`, SIGKILLed at `kill_at` of the new extract's package
    (a package left by an earlier kill is resumed first, unharmed)."""
    import dlt
    from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient
    from dlt.destinations.impl.postgres.sql_client import Psycopg2SqlClient

    from loaders.core.settings import Settings

    extracted = False

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def after(step: str, original: Any) -> Any:
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal extracted
            result = original(self, *args, **kwargs)
            extracted = extracted or step == "extract"
            if extracted and kill_at == step:
                die()
            return result

        return wrapped

    def watching(original: Any) -> Any:
        def wrapped(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = str(query).upper()
            if extracted and kill_at == "load" and "DELETE FROM" in text and "EXISTS" in text:
                die()  # the merge from staging into raw is about to run
            if "INSERT INTO" in text and "_DLT_PIPELINE_STATE" in text:
                self.wrote_state = True
            return original(self, query, *args, **kwargs)

        return wrapped

    def committing(original: Any) -> Any:
        def wrapped(self: Any) -> Any:
            original(self)
            if extracted and kill_at == "state_committed" and getattr(self, "wrote_state", False):
                die()  # committed in the warehouse, not yet recorded as done by dlt

        return wrapped

    dlt.Pipeline.extract = after("extract", dlt.Pipeline.extract)
    dlt.Pipeline.normalize = after("normalize", dlt.Pipeline.normalize)
    for client in (DuckDbSqlClient, Psycopg2SqlClient):
        client.execute_query = watching(client.execute_query)
        client.commit_transaction = committing(client.commit_transaction)
    land(Settings.from_env(), source)


def run_killed(source: str, kill_at: str) -> None:
    code = f"from tests.contract.test_catch_up import killed_load; killed_load({source!r}, {kill_at!r})"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=dict(os.environ), capture_output=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, f"{source} was not killed at {kill_at}: {proc.stderr[-3000:]!r}"


def test_kill_and_change_cycles_lose_no_version_a_source_served(
    warehouse, reference_warehouse, tmp_path, monkeypatch
) -> None:
    with (
        Project.started(reference_warehouse, tmp_path, monkeypatch, name="reference") as reference,
        Project.started(warehouse, tmp_path, monkeypatch, name="crashed") as crashed,
    ):
        served: list[Versions] = []

        def change_both(step: int) -> None:
            served.append(change_every_source(reference, step))
            change_every_source(crashed, step)

        def with_env(project: Project) -> None:
            for name, value in project.env().items():
                monkeypatch.setenv(name, value)

        change_both(0)
        for project in (reference, crashed):
            with_env(project)
            project.load()

        for step, kill_at in enumerate(KILL_POINTS, start=1):
            change_both(step)
            with_env(reference)
            reference.load()
            with_env(crashed)
            for source in SOURCES:
                run_killed(source, kill_at)
            # killed before its own load completed, after resuming the package the previous kill left
            assert_landed(crashed, *served[:step])
            if kill_at != "state_committed":  # the merges may already have run in parallel
                assert_not_landed(crashed, served[step])

        change_both(len(KILL_POINTS) + 1)
        with_env(reference)
        reference.load()
        with_env(crashed)
        for source in SOURCES:
            report = land(crashed.settings, source)
            assert report.resumed_packages == 1, f"{source}: the package killed while loading was not resumed"

        assert_landed(crashed, *served)
        landed = raw_contents(crashed)
        with_env(reference)
        assert landed == raw_contents(reference)

"""The orders API loader: transient faults are survived, fatal answers stop the run clearly, and the
token never appears in what the run prints."""

from __future__ import annotations

import os
import subprocess
import sys

from loaders.core.outcomes import ExitCode
from loaders.simulate import FaultPlan
from tests.contract.records import order
from tests.support.project import Project


def plant_orders(project: Project, count: int) -> None:
    project.api_store.add_many(order(f"o{n}", updated_at=f"2024-03-01T{10 + n % 10:02d}:00:00Z") for n in range(count))


def test_transient_faults_are_retried_and_every_page_lands(warehouse, tmp_path, monkeypatch) -> None:
    faults = FaultPlan(sequence=["429", "503", "ok", "500", "502", "drop", "504", "truncate"], retry_after_seconds=1)
    with Project.started(warehouse, tmp_path, monkeypatch, faults=faults) as project:
        monkeypatch.setenv("SOURCES__SHOP_API__PAGE_SIZE", "3")
        plant_orders(project, 10)
        (outcome,) = project.load("shop_api")

        assert outcome.landed == 10 and outcome.dead_lettered == 0
        assert project.api.requests_served >= 4 + 7  # 4 pages, 7 faults answered on the way
        assert project.scalar("select count(distinct id) from raw_shop_api.orders") == 10


def test_a_rerun_lands_nothing_twice(project) -> None:
    plant_orders(project, 5)
    project.load("shop_api")
    project.load("shop_api")  # the lag re-reads the same versions: they merge onto themselves
    assert project.scalar("select count(*) from raw_shop_api.orders") == 5


def test_wrong_token_fails_the_run_clearly_without_printing_it(project) -> None:
    plant_orders(project, 2)
    secret = "s3cr3t-token-that-must-not-leak"
    env = {**os.environ, "SOURCES__SHOP_API__TOKEN": secret}

    proc = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "run", "--source", "shop_api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert proc.returncode == ExitCode.LOAD_FAILED
    assert "shop_api FAILED (ShopApiError: shop_api: GET /v1/orders answered 401" in proc.stdout
    assert "SOURCES__SHOP_API__TOKEN" in proc.stdout and "SOURCES__SHOP_API__TOKEN" in proc.stderr
    assert secret not in proc.stdout + proc.stderr


def test_token_is_absent_from_a_successful_run_output(project) -> None:
    plant_orders(project, 2)
    proc = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "run"], env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.startswith("elt run ok: shop_api extracted=2 landed=2 unchanged=0 dead_lettered=0;")
    assert project.token not in proc.stdout + proc.stderr


def test_records_without_a_version_are_taken_once_not_on_every_run(project) -> None:
    """The API serves a record without a parseable `updated_at` whatever `updated_since` says: the loader
    takes it once (landed or dead-lettered) and then skips it unchanged; a changed one is taken again."""
    project.api_store.add_many(
        [order("o_versioned"), order("o_unversioned", updated_at=None), order(None, updated_at="yesterday")]
    )
    (first,) = project.load("shop_api")
    (second,) = project.load("shop_api")
    project.api_store.add(order("o_unversioned", updated_at=None, status="shipped"))
    (third,) = project.load("shop_api")

    assert (first.extracted, first.landed, first.dead_lettered) == (3, 2, 1)
    assert (second.extracted, second.dead_lettered) == (1, 0)  # o_versioned, re-read within the lag
    assert (third.extracted, third.dead_lettered) == (2, 0)  # and the changed record
    statuses = project.query("select status from raw_shop_api.orders where id = 'o_unversioned'")
    assert statuses == [("shipped",)]  # the same (key, version ''): the change replaced it

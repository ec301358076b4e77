"""dbt backfills through `elt build`, on both warehouses: `daily_revenue` rebuilds a date window asked for
with `--vars '{backfill_start: …, backfill_end: …}'` — and only that window — and `elt build --select
orders+ --full-refresh` rebuilds a model and its children from raw; a bad window stops the build with a
clear message and changes nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from loaders.core.outcomes import ExitCode
from loaders.simulate import SimulationConfig, generate
from loaders.warehouse import connect
from tests.contract.records import assert_full_refresh_reproduces
from tests.support.cli import elt
from tests.support.project import Project
from tests.support.runbook import Runbook

pytestmark = pytest.mark.warehouses("postgres")

REBUILD = "Rebuild a model and its children"

WORLD = SimulationConfig(seed=53, customers=30, orders_per_day=50)


def execute(project: Project, sql: str) -> None:
    with connect(project.settings, read_only=False) as conn:
        conn.cursor().execute(sql)


def revenue(project: Project) -> dict[tuple[str, str], str]:
    return {
        (str(day), currency): str(net)
        for day, currency, net in project.query(
            "select revenue_date, currency, net_amount from analytics.daily_revenue"
        )
    }


def test_daily_revenue_rebuilds_the_window_asked_for_and_nothing_else(project: Project, runbook: Runbook) -> None:
    generate(project.root, WORLD, through_day=3)
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    good = revenue(project)
    days = sorted({day for day, _ in good})
    assert len(days) >= 2, good
    inside, outside = days[0], days[-1]
    empty_day = str(date.fromisoformat(inside) - timedelta(days=1))  # no payment that day
    assert empty_day not in {day for day, _ in good}

    # hand damage: two days' figures, and a row for a day without payments
    damaged = f"('{inside}', '{outside}')"
    execute(project, f"update analytics.daily_revenue set net_amount = 0 where revenue_date in {damaged}")
    execute(
        project,
        "insert into analytics.daily_revenue (revenue_date, currency, payments_count, gross_amount,"
        f" refunded_amount, net_amount) values ('{empty_day}', 'EUR', 1, 1, 0, 1)",
    )
    window = f"{{backfill_start: {empty_day}, backfill_end: {inside}}}"
    done = elt("build", "--select", "daily_revenue", "--vars", window)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]

    now = revenue(project)
    assert {k: v for k, v in now.items() if k[0] == inside} == {k: v for k, v in good.items() if k[0] == inside}
    assert not [k for k in now if k[0] == empty_day]
    assert all(now[k] == "0.00" for k in now if k[0] == outside), now  # outside the window: left as it was

    bad = elt("build", "--select", "daily_revenue", "--vars", "{backfill_start: 2024-03-05, backfill_end: 2024-03-01}")
    assert bad.returncode == ExitCode.BUILD_FAILED and "backfill_start and backfill_end" in bad.stdout + bad.stderr
    assert revenue(project) == now

    # a model and its children, from raw
    rebuilt = elt("build", "--select", "daily_revenue+", "--full-refresh")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr[-3000:]
    assert revenue(project) == good
    runbook.run(REBUILD, project.root)  # the runbook's `elt build --select orders+ --full-refresh`
    assert_full_refresh_reproduces(project)
    runbook.run(REBUILD, project.root)  # its window of daily_revenue, rebuilt from what is there: no change
    assert revenue(project) == good

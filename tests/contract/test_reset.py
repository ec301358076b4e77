"""`elt reset SOURCE`, on both warehouses: without `--yes` it prints what it would drop and changes nothing;
with it, the source is landed again from scratch and every model downstream rebuilt, so a record the source
no longer serves (deleted upstream, which no incremental cursor sees) leaves the canonical tables, and the
result equals a full refresh. Twice in a row gives the same tables; the ledger keeps every run.
"""

from __future__ import annotations

import pytest

from loaders.core.outcomes import ExitCode
from loaders.simulate import SimulationConfig, generate
from tests.contract.records import assert_full_refresh_reproduces
from tests.support.cli import elt
from tests.support.project import Project
from tests.support.runbook import Runbook

pytestmark = pytest.mark.warehouses("postgres")

WORLD = SimulationConfig(seed=41, customers=30, orders_per_day=40, invalid_rate=0.1)


def test_reset_lands_a_source_again_and_forgets_what_it_no_longer_serves(project: Project, runbook: Runbook) -> None:
    generate(project.root, WORLD, through_day=2)
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    customers = project.scalar("select count(*) from analytics.customers")
    raw_before = project.scalar("select count(*) from raw_app_db.customers")
    (gone,) = project.query("select customer_id from analytics.customers order by customer_id limit 1")[0]
    with project.app_db.connect() as db:  # deleted upstream: no cursor of an incremental load sees it
        db.execute("delete from customers where id = ?", (gone,))
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    assert project.scalar(f"select count(*) from analytics.customers where customer_id = '{gone}'") == 1

    dry = runbook.run("Reset a source", project.root)  # the runbook's commands, as written
    assert dry.returncode == 0, dry.stderr
    assert f"drop raw_app_db.customers ({raw_before} rows)" in dry.stdout, dry.stdout
    assert "nothing changed" in dry.stdout
    assert project.scalar("select count(*) from raw_app_db.customers") == raw_before
    assert project.scalar("select count(*) from ops.elt_runs where command = 'reset'") == 0

    for attempt in range(2):
        done = runbook.run("Reset a source", project.root) if attempt == 0 else elt("reset", "app_db", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        assert project.scalar(f"select count(*) from analytics.customers where customer_id = '{gone}'") == 0
        assert project.scalar("select count(*) from analytics.customers") == customers - 1
        assert project.scalar("select count(*) from raw_app_db.customers") < raw_before, attempt
        assert_full_refresh_reproduces(project)
    assert project.scalar("select count(*) from ops.elt_runs where command = 'reset' and status = 'ok'") == 2

    # the next scheduled run finds nothing new and keeps the result
    snapshot = project.snapshot()
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    assert project.snapshot() == snapshot

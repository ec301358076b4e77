"""Rules and seeds are inputs too: after a seed gains and loses a code and a rule is loosened, the next plain
build (no --full-refresh) judges the landed versions again — quarantined versions that pass now are
released, canonical versions that fail now fall back and open a quarantine row — exactly what a full
refresh gives. `elt replay --dry-run` says so beforehand, per table, and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.contract.records import assert_full_refresh_reproduces, customer, delivered, order, payment
from tests.support.dbt_project import copy_of_the_dbt_project, edit
from tests.support.project import Project
from tests.support.runbook import Runbook

REPLAY = "Replay quarantine after a fix of the rules or the seeds"


def elt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loaders.cli", *args], env=dict(os.environ), capture_output=True, text=True
    )


def test_a_rule_or_seed_change_is_applied_without_full_refresh(
    project: Project, tmp_path, monkeypatch, runbook: Runbook
) -> None:
    dbt_project = copy_of_the_dbt_project(tmp_path / "dbt_project")
    monkeypatch.setenv("ELT_PROJECT_DIR", str(dbt_project))

    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o_eur"))
    project.api_store.add(order("o_chf", currency="CHF"))
    project.api_store.add(order("o_xyz", currency="XYZ"))
    project.deliver(
        "payments_20240301_01.csv",
        [payment("p_crypto", order_id="o_eur", method="crypto"), payment("p_chf", order_id="o_chf", currency="CHF")],
        delivered(2),
    )
    project.run()
    assert project.open_quarantine("orders") == {"o_xyz": ("2024-03-01T12:00:00Z", "unknown_currency")}
    assert set(project.open_quarantine("payments")) == {"p_crypto"}
    before = project.snapshot()

    # the seed gains XYZ and loses CHF; the rule admits a new payment method
    edit(dbt_project / "seeds" / "currencies.csv", "CHF,Swiss Franc,2\n", "XYZ,Test Unit,2\n")
    edit(dbt_project / "macros" / "rules" / "payment_rules.sql", "'wallet')", "'wallet', 'crypto')")

    dry_run = runbook.run(REPLAY, tmp_path)  # the runbook's commands, as written
    assert dry_run.returncode == 0, dry_run.stdout + dry_run.stderr[-3000:]
    report = dry_run.stdout
    assert "customers: released=0 quarantined=0 reasons_changed=0" in report
    assert "orders: released=1 quarantined=1 reasons_changed=0" in report
    assert "payments: released=1 quarantined=1 reasons_changed=0" in report
    assert "released: o_xyz" in report and "quarantined: o_chf" in report
    assert "released: p_crypto" in report and "quarantined: p_chf" in report
    assert project.snapshot() == before  # the dry run changed nothing users read
    assert project.scalar("select count(*) from information_schema.schemata where schema_name like 'ops_replay%'") == 0

    applied = runbook.run(REPLAY, tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr[-3000:]

    orders = project.canonical("orders")
    assert ("o_xyz",) in orders and ("o_chf",) not in orders
    assert project.open_quarantine("orders") == {"o_chf": ("2024-03-01T12:00:00Z", "unknown_currency")}
    assert ("p_crypto",) in project.canonical("payments")
    assert project.open_quarantine("payments") == {"p_chf": ("2024-03-01T12:30:00Z", "unknown_currency,unknown_order")}
    assert_full_refresh_reproduces(project)

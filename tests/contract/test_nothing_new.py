"""Nothing new, nothing built: a run whose loads bring no new version (the cursors' lag re-reads only what raw
holds and the refusals the dead letters hold, left out as unchanged), with no change of the project's models,
macros, rules or seeds since the last clean build, starts no dbt at all — its summary says `skipped=N` and why
— and its books balance; new data, a changed rule file, or a failed test in the last build each make the next
run build again; and whatever was skipped, the tables equal a full refresh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.contract.records import assert_full_refresh_reproduces, customer, order
from tests.support.cli import PROJECT_DIR
from tests.support.dbt_project import copy_of_the_dbt_project, edit
from tests.support.project import Project

NO_KEY = {"status": "paid", "currency": "EUR", "updated_at": "2024-03-01T12:00:00Z"}  # dead-lettered: no id


def elt_run() -> tuple[int, str, list[dict]]:
    proc = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "run"],
        cwd=PROJECT_DIR,
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout.strip(), [json.loads(line) for line in proc.stderr.splitlines()]


def started_dbt(events: list[dict]) -> bool:
    return any(event["event"] == "dbt_started" for event in events)


def test_a_run_with_nothing_new_builds_nothing_and_changes_build_again(
    project: Project, tmp_path: Path, monkeypatch
) -> None:
    dbt_project = copy_of_the_dbt_project(tmp_path / "dbt_project")
    monkeypatch.setenv("ELT_PROJECT_DIR", str(dbt_project))
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.api_store.add(NO_KEY)

    code, line, events = elt_run()
    assert code == 0 and started_dbt(events) and "skipped=" not in line, line
    assert "shop_api extracted=2 landed=1 unchanged=0 dead_lettered=1" in line, line

    # the same sources again: the lag re-reads o1 and the keyless record, raw holds o1 as it is and the
    # dead letters the refusal, for the same reason: nothing is new
    code, line, events = elt_run()
    assert code == 0, line
    assert "shop_api extracted=2 landed=0 unchanged=2 dead_lettered=0" in line, line
    assert "models built=0 failed=0 skipped=" in line and "nothing new since run" in line, line
    assert not started_dbt(events)
    books = [event for event in events if event["event"] == "book"]
    assert books and all(book["balanced"] for book in books), books
    assert [event for event in events if event["event"] == "build_skipped"]

    # a new version: built again
    project.api_store.add(order("o1", status="shipped", updated_at="2024-03-01T15:00:00Z"))
    code, line, events = elt_run()
    assert code == 0 and started_dbt(events) and "skipped=" not in line, line
    assert project.scalar("select status from analytics.orders where order_id = 'o1'") == "shipped"

    # nothing new again, but a rule file changed since the last clean build: built again
    edit(dbt_project / "macros" / "rules" / "order_rules.sql", "{#-", "{#- (edited)")
    code, line, events = elt_run()
    assert code == 0 and started_dbt(events) and "skipped=" not in line, line
    code, line, events = elt_run()
    assert code == 0 and not started_dbt(events) and "skipped=" in line, line

    assert_full_refresh_reproduces(project)

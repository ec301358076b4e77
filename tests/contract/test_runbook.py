"""The runbook (docs/runbook.md), run as written: every command of every procedure, on both warehouses.

Each procedure's commands are read from the runbook itself (tests/support/runbook.py) and run in a shell,
in order, with the project's virtualenv on PATH and the test deployment's settings in the environment,
after a set-up that puts the deployment in the situation the procedure is for; the test then checks that
the procedure did what the runbook says. Most procedures run inside the dedicated test of what they do
(PROCEDURE_TESTS); the three here have none. The last test checks that every procedure has its test.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
from pathlib import Path

from loaders.core.outcomes import ExitCode
from loaders.core.registry import SOURCE_NAMES
from loaders.simulate import SimulationConfig, generate
from tests.support.project import Project
from tests.support.runbook import PROJECT_DIR, Runbook, procedures

WORLD = SimulationConfig(seed=5, customers=20, orders_per_day=20)
SCHEDULE = "Schedule it with cron"


def test_schedule_it_with_cron(project: Project, runbook: Runbook, tmp_path: Path) -> None:
    generate(project.root, WORLD, through_day=1)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {"ELT_HOME": str(PROJECT_DIR), "ELT_LOGS": str(logs)}
    # two schedules firing at once (the cron line, run as cron runs it, twice): one runs, one exits 5
    cron_line = procedures()[SCHEDULE][0]
    both = [subprocess.Popen(["bash", "-c", cron_line], cwd=tmp_path, env={**os.environ, **env}) for _ in range(2)]
    assert sorted(proc.wait(timeout=900) for proc in both) == [0, ExitCode.LOCKED]
    summaries = (logs / "elt-summary.log").read_text()
    assert "FAILED(locked)" in summaries and "elt run ok:" in summaries, summaries

    runbook.run(SCHEDULE, tmp_path, env)  # the cron line once more: nothing new, it runs alone
    last_summary = runbook.run(SCHEDULE, tmp_path, env)
    assert last_summary.stdout.startswith("elt run ok:"), last_summary.stdout
    event = json.loads(runbook.run(SCHEDULE, tmp_path, env).stdout)
    assert event["event"] == "run_finished" and event["exit_code"] == 0 and event["run_id"], event


def test_rotate_a_credential(project: Project, runbook: Runbook, tmp_path: Path) -> None:
    title = "Rotate a credential"
    old_token = {"SOURCES__SHOP_API__TOKEN": "the-old-token"}  # before the new one is in place
    refused = runbook.run(title, tmp_path, old_token, expect=ExitCode.CHECK_FAILED, index=0)
    assert "shop_api" in refused.stdout and "the-old-token" not in refused.stdout + refused.stderr
    accepted = runbook.run(title, tmp_path, index=0)  # the new token, as the deployment now has it
    assert all(name in accepted.stdout for name in SOURCE_NAMES), accepted.stdout


# Each procedure and the test that runs its commands, as written, through the `runbook` fixture (which fails
# a test that leaves one unrun): where a dedicated test already puts the deployment in the procedure's
# situation, the procedure is run there rather than set up twice.
PROCEDURE_TESTS = {
    "Schedule it with cron": "tests.contract.test_runbook:test_schedule_it_with_cron",
    "Recover after a crash": "tests.contract.test_crash_resume:test_sigkilled_runs_resume_to_the_uninterrupted_result",
    "Backfill a window a source re-sent": "tests.contract.test_backfill_window:"
    "test_backfill_lands_a_late_window_in_chunks_resumes_a_failed_one_and_leaves_the_cursor",
    "Rebuild a model and its children": "tests.contract.test_backfill:"
    "test_daily_revenue_rebuilds_the_window_asked_for_and_nothing_else",
    "Replay quarantine after a fix of the rules or the seeds": "tests.contract.test_rules_and_seeds_change:"
    "test_a_rule_or_seed_change_is_applied_without_full_refresh",
    "Work the dead letters": "tests.contract.test_dead_letters:"
    "test_dead_letters_are_listed_and_a_corrected_record_lands_once",
    "Reset a source": "tests.contract.test_reset:test_reset_lands_a_source_again_and_forgets_what_it_no_longer_serves",
    "Rotate a credential": "tests.contract.test_runbook:test_rotate_a_credential",
    "Add a source": "tests.contract.test_add_a_source:"
    "test_a_fourth_source_added_as_the_runbook_says_lands_builds_and_touches_nothing_else",
    "Move from DuckDB to PostgreSQL": "tests.contract.test_moving_warehouses:"
    "test_loading_the_same_sources_into_postgresql_after_duckdb_gives_the_same_tables",
}


def test_every_procedure_of_the_runbook_is_run_by_a_test() -> None:
    assert set(procedures()) == set(PROCEDURE_TESTS), "a procedure without its test, or a test of no procedure"
    for title, where in PROCEDURE_TESTS.items():
        module, name = where.split(":")
        test = getattr(importlib.import_module(module), name)
        assert "runbook" in inspect.signature(test).parameters, f"{where} does not run the runbook's {title!r}"
        assert procedures()[title], f"the runbook's procedure {title!r} has no command"

"""The runbook (docs/runbook.md), run as written: every command of every procedure, on both warehouses.

Each procedure's commands are read from the runbook itself — the lines of its ```sh blocks, and the command
of each schedule line of its ```cron block as cron would run it — and run in a shell, in order, with the
project's virtualenv on PATH and the test deployment's settings in the environment, after a set-up that
puts the deployment in the situation the procedure is for. The test then checks that the procedure did
what the runbook says. One more test checks that every procedure of the runbook has its test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from loaders.entities import SOURCE_NAMES
from loaders.harness import ExitCode
from loaders.settings import Settings
from loaders.simulate import SimulationConfig, generate
from tests.contract.records import assert_full_refresh_reproduces, customer, delivered, order, payment
from tests.contract.test_moving_warehouses import (
    assert_same_tables,
    duckdb_deployment,
    postgres_database,
    warehouse_tables,
)
from tests.support.dbt_project import copy_of_the_dbt_project, edit
from tests.support.project import Project

PROJECT_DIR = Path(__file__).resolve().parents[2]
RUNBOOK = PROJECT_DIR / "docs" / "runbook.md"
WORLD = SimulationConfig(seed=5, customers=20, orders_per_day=20, invalid_rate=0.1, damaged_rate=0.05)


def procedures() -> dict[str, list[str]]:
    """Each `## N. Title` of the runbook and its commands, in order."""
    found: dict[str, list[str]] = {}
    title = None
    for section in re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)[1:]:
        title = re.sub(r"^\d+\.\s*", "", section.splitlines()[0]).strip()
        commands = []
        for kind, block in re.findall(r"```(sh|cron)\n(.*?)```", section, flags=re.DOTALL):
            for line in block.splitlines():
                if not line.strip() or line.startswith("#"):
                    continue
                if kind == "cron":
                    fields = line.split(maxsplit=5)
                    if "=" in fields[0]:
                        continue  # a crontab variable: the test sets its own
                    line = fields[5]  # after minute, hour, day, month and weekday
                commands.append(line)
        found[title] = commands
    return found


def run_procedure(
    title: str, cwd: Path, env: dict[str, str] | None = None, expect: list[int] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Run every command of the procedure as written; each must exit as `expect` says (default 0)."""
    commands = procedures()[title]
    assert commands, f"the runbook's procedure {title!r} has no command"
    expect = expect or [0] * len(commands)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = []
    for command, code in zip(commands, expect, strict=True):
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env={**os.environ, "PATH": path, **(env or {})},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == code, (
            f"{title}: `{command}` exited {proc.returncode}\n{proc.stdout}{proc.stderr[-3000:]}"
        )
        done.append(proc)
    return done


def test_schedule_it_with_cron(project: Project, tmp_path: Path) -> None:
    generate(project.root, WORLD, through_day=1)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {"ELT_HOME": str(PROJECT_DIR), "ELT_LOGS": str(logs)}
    _, last_summary, last_event = run_procedure("Schedule it with cron", tmp_path, env)
    assert last_summary.stdout.startswith("elt run ok:"), last_summary.stdout
    event = json.loads(last_event.stdout)
    assert event["exit_code"] == 0 and event["run_id"], event
    # two schedules firing at once: one runs, the other exits 5 and changes nothing
    (cron_line,) = [c for c in procedures()["Schedule it with cron"] if "elt run" in c]
    both = [subprocess.Popen(["bash", "-c", cron_line], cwd=tmp_path, env={**os.environ, **env}) for _ in range(2)]
    assert sorted(proc.wait(timeout=900) for proc in both) == [0, ExitCode.LOCKED]
    assert "FAILED(locked)" in (logs / "elt-summary.log").read_text()


def test_recover_after_a_crash(project: Project, tmp_path: Path) -> None:
    generate(project.root, WORLD, through_day=1)
    log = tmp_path / "killed.log"
    with open(log, "w") as out:
        killed = subprocess.Popen(
            [sys.executable, "-m", "loaders.cli", "run"], stdout=out, stderr=out, start_new_session=True
        )
    while killed.poll() is None and '"event": "load_started", "source": "app_db"' not in log.read_text():
        time.sleep(0.02)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()

    status, run = run_procedure("Recover after a crash", tmp_path, {"COLUMNS": "200"})  # a wide table
    assert "running" in status.stdout, status.stdout
    assert run.stdout.startswith("elt run ok:"), run.stdout
    statuses = [s for (s,) in project.query("select status from ops.elt_runs order by started_at")]
    assert statuses == ["abandoned", "ok"]
    assert_full_refresh_reproduces(project)


def test_backfill_a_window_a_source_re_sent(project: Project, tmp_path: Path) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1", updated_at="2024-03-01T12:00:00Z"))
    project.api_store.add(order("o2", updated_at="2024-03-06T12:00:00Z"))
    project.run()
    # re-sent days after the cursor passed them, beyond what its lag re-reads
    project.api_store.add(order("o1", updated_at="2024-03-02T09:00:00Z", status="shipped"))
    project.api_store.add(order("o3", updated_at="2024-03-03T10:00:00Z"))
    project.load("shop_api")
    assert ("o3",) not in project.canonical("orders")

    backfilled, resumed = run_procedure("Backfill a window a source re-sent", tmp_path)
    assert "chunks 3 ok=3 failed=0" in backfilled.stdout, backfilled.stdout
    orders = project.canonical("orders")
    assert ("o3",) in orders and orders[("o1",)][2] == "shipped"
    assert "already ok" in resumed.stdout, resumed.stdout  # nothing failed: nothing re-extracted


def test_rebuild_a_model_and_its_children(project: Project, tmp_path: Path) -> None:
    generate(project.root, WORLD, through_day=2)
    project.run()
    before = project.snapshot()
    rebuilt, dates = run_procedure("Rebuild a model and its children", tmp_path)
    assert "failed=0" in rebuilt.stdout and "failed=0" in dates.stdout, rebuilt.stdout + dates.stdout
    assert project.snapshot() == before


def test_replay_quarantine_after_a_fix_of_the_rules_or_the_seeds(project: Project, tmp_path: Path, monkeypatch) -> None:
    dbt_project = copy_of_the_dbt_project(tmp_path / "dbt_project")
    monkeypatch.setenv("ELT_PROJECT_DIR", str(dbt_project))
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o_xyz", currency="XYZ"))
    project.run()
    assert set(project.open_quarantine("orders")) == {"o_xyz"}
    edit(dbt_project / "seeds" / "currencies.csv", "CHF,Swiss Franc,2\n", "CHF,Swiss Franc,2\nXYZ,Test Unit,2\n")

    preview, _ = run_procedure("Replay quarantine after a fix of the rules or the seeds", tmp_path)
    assert "orders: released=1" in preview.stdout and "released: o_xyz" in preview.stdout, preview.stdout
    assert ("o_xyz",) in project.canonical("orders") and not project.open_quarantine("orders")


def test_work_the_dead_letters(project: Project, tmp_path: Path) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.deliver("payments_20240301_01.csv", [payment("p1"), ["p_cut", "o1"]], delivered(1))
    project.run()
    (dead_letter_id,) = project.query("select dead_letter_id from raw_payments_files.dead_letters")[0]
    corrected = ",".join(payment("p_cut"))
    (tmp_path / "corrections.json").write_text(json.dumps({dead_letter_id: corrected}))

    listed, replayed = run_procedure("Work the dead letters", tmp_path)
    assert dead_letter_id in listed.stdout, listed.stdout
    assert "corrected=1" in replayed.stdout, replayed.stdout
    assert ("p_cut",) in project.canonical("payments")
    assert project.scalar("select count(*) from raw_payments_files.dead_letters") == 1  # kept as history


def test_reset_a_source(project: Project, tmp_path: Path) -> None:
    generate(project.root, WORLD, through_day=1)
    project.run()
    (gone,) = project.query("select customer_id from analytics.customers order by customer_id limit 1")[0]
    with project.app_db.connect() as db:
        db.execute("delete from customers where id = ?", (gone,))

    planned, reset = run_procedure("Reset a source", tmp_path)
    assert "nothing changed" in planned.stdout and "\nelt reset app_db: " in reset.stdout, planned.stdout
    assert (gone,) not in project.canonical("customers")
    assert_full_refresh_reproduces(project)


def test_rotate_a_credential(project: Project, tmp_path: Path) -> None:
    (refused,) = run_procedure(
        "Rotate a credential", tmp_path, {"SOURCES__SHOP_API__TOKEN": "the-old-token"}, [ExitCode.CHECK_FAILED]
    )
    assert "shop_api" in refused.stdout and "the-old-token" not in refused.stdout + refused.stderr
    (accepted,) = run_procedure("Rotate a credential", tmp_path)  # the new token, as the project has it
    assert all(name in accepted.stdout for name in SOURCE_NAMES), accepted.stdout


def test_add_a_source(project: Project) -> None:
    registry, check = run_procedure("Add a source", PROJECT_DIR)
    assert " passed" in registry.stdout, registry.stdout
    assert all(name in check.stdout for name in SOURCE_NAMES), check.stdout


def test_move_from_duckdb_to_postgresql(postgres_server: dict[str, str], tmp_path: Path, monkeypatch) -> None:
    with duckdb_deployment(tmp_path, monkeypatch) as project, postgres_database(postgres_server) as postgres:
        for day in (1, 2):
            generate(project.root, WORLD, through_day=day)
            code, line = project.elt_run()
            assert code == ExitCode.OK, line
        on_duckdb = Settings.from_env()
        _, planned, moved, run = run_procedure(
            "Move from DuckDB to PostgreSQL", on_duckdb.duckdb_path.parent, postgres.env
        )
        assert "nothing changed" in planned.stdout and "\nelt move: copied" in moved.stdout, moved.stdout
        assert run.stdout.startswith("elt run ok:"), run.stdout
        on_postgres = Settings.from_env({**os.environ, **postgres.env})
        assert_same_tables(warehouse_tables(on_duckdb), warehouse_tables(on_postgres))


def test_every_procedure_of_the_runbook_is_run_by_a_test() -> None:
    tests = {name for name in globals() if name.startswith("test_")}
    for title, commands in procedures().items():
        name = "test_" + re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
        assert name in tests, f"the runbook's procedure {title!r} has no test {name}"
        assert commands, title
    assert len(procedures()) == len(tests) - 1

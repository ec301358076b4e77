"""The run ledger and `elt status`, on both warehouses.

Every `elt` command that writes leaves one row in `ops.elt_runs` and one per source it loaded in
`ops.elt_run_sources`, with the numbers its summary line printed; a run that dies leaves `running` and the
next run marks it `abandoned`; a `--full-refresh` keeps the ledger. `elt status` reads it back with the
sources' cursors, freshness and the open quarantine per reason code, and answers while a run holds the
lock (PostgreSQL) or reports the DuckDB file busy and still shows what it knows without it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from loaders.core.outcomes import ExitCode
from loaders.ops.runner import ledgered
from loaders.simulate import SimulationConfig, generate
from loaders.warehouse import connect
from loaders.warehouse.locks import run_lock
from tests.support.cli import duckdb_file_held, elt
from tests.support.project import Project

pytestmark = pytest.mark.warehouses("postgres")

WORLD = SimulationConfig(seed=31, customers=25, orders_per_day=40, invalid_rate=0.15, late_dimension_rate=0.2)


def summary_counts(line: str) -> dict[str, tuple[int, int, int]]:
    return {
        source: (int(extracted), int(landed), int(dead))
        for source, extracted, landed, dead in re.findall(
            r"(\w+) extracted=(\d+) landed=(\d+) unchanged=\d+ dead_lettered=(\d+)", line
        )
    }


def test_each_run_is_in_the_ledger_with_the_numbers_it_printed(project: Project) -> None:
    generate(project.root, WORLD, through_day=1)
    first_code, first_line = project.elt_run()
    generate(project.root, WORLD, through_day=2)
    second_code, second_line = project.elt_run()
    assert (first_code, second_code) == (ExitCode.OK, ExitCode.OK), (first_line, second_line)

    runs = project.query(
        "select run_id, command, status, exit_code, summary, dbt_invocation_id, models_built, models_failed,"
        " quarantine_opened, quarantine_resolved, finished_at >= started_at from ops.elt_runs order by started_at"
    )
    assert [(r[1], r[2], r[3], r[4]) for r in runs] == [("run", "ok", 0, first_line), ("run", "ok", 0, second_line)]
    for run in runs:
        assert run[5] and run[6] > 0 and run[7] == 0 and run[10], run
    opened = sum(r[8] for r in runs)
    assert opened >= project.scalar("select count(*) from quarantine.orders where not is_resolved") > 0

    for (run_id, *_), line in zip(runs, (first_line, second_line), strict=True):
        rows = project.query(
            "select source, status, extracted, landed, dead_lettered, load_ids from ops.elt_run_sources"
            f" where run_id = '{run_id}' order by source"
        )
        assert {r[0]: (r[2], r[3], r[4]) for r in rows} == summary_counts(line)
        assert all(r[1] == "ok" for r in rows)
        for source, *_counts, load_ids in rows:
            for load_id in json.loads(load_ids):  # the ids it names are dlt's completed loads
                assert (
                    project.scalar(
                        f"select count(*) from raw_{source}._dlt_loads where load_id = '{load_id}' and status = 0"
                    )
                    == 1
                )

    # each source's cursor moves from where the last run left it
    cursors = project.query(
        "select s.source, s.cursor_before, s.cursor_after from ops.elt_run_sources s"
        " join ops.elt_runs r using (run_id) order by r.started_at, s.source"
    )
    first, second = cursors[:3], cursors[3:]
    for (source, _, after), (same, before, _) in zip(first, second, strict=True):
        assert source == same and json.loads(after) == json.loads(before) and json.loads(after), source
    payments = {source: json.loads(after) for source, _, after in second}["payments_files"]
    assert payments["payments"]["files"] == len(list((project.root / "payments").iterdir()))

    # a full refresh rebuilds every model, and keeps the ledger
    project.build("--full-refresh")
    assert project.scalar("select count(*) from ops.elt_runs") == 2


def test_a_run_that_dies_is_abandoned_and_one_that_raises_is_failed(project: Project, monkeypatch) -> None:
    generate(project.root, WORLD, through_day=1)
    settings = project.settings
    with run_lock(settings), ledgered(settings, "run", []) as run:
        run_id = run.run_id
        # what a SIGKILL leaves: the row `running` with no finish (checked before the block completes it)
        assert project.scalar(f"select status from ops.elt_runs where run_id = '{run_id}'") == "running"
        assert project.scalar(f"select finished_at from ops.elt_runs where run_id = '{run_id}'") is None
        with connect(settings, read_only=False) as conn:
            conn.cursor().execute(f"update ops.elt_runs set run_id = 'killed' where run_id = '{run_id}'")

    import loaders.ops.runner

    def broken(*_args, **_kwargs):
        raise RuntimeError("dbt could not start: no such file")

    monkeypatch.setattr(loaders.ops.runner, "run_dbt", broken)
    with pytest.raises(RuntimeError):
        project.elt_run()
    rows = dict(project.query("select run_id, status from ops.elt_runs where command = 'run'"))
    assert rows.pop("killed") == "abandoned"
    ((failed_status,),) = [(s,) for s in rows.values()]
    assert failed_status == "failed"
    assert "dbt could not start" in project.scalar("select error from ops.elt_runs where status = 'failed'")
    assert project.scalar("select exit_code from ops.elt_runs where status = 'failed'") == 1


def test_status_shows_runs_cursors_freshness_and_quarantine_by_reason(project: Project) -> None:
    generate(project.root, WORLD, through_day=2)
    code, line = project.elt_run()
    assert code == ExitCode.OK, line

    shown = elt("status", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["warehouse"] == "ok"
    assert [(run["command"], run["status"], run["exit_code"]) for run in status["runs"]] == [("run", "ok", 0)]
    by_source = {source["source"]: source for source in status["sources"]}
    assert set(by_source) == {"shop_api", "app_db", "payments_files"}
    for source in by_source.values():
        assert source["freshness"] == "pass" and source["age_hours"] < 1 and source["cursor"], source
        assert source["pending_packages"] == 0
    assert by_source["shop_api"]["dead_letters_last_run"] == summary_counts(line)["shop_api"][2]

    expected: dict[tuple[str, str], int] = {}
    for table in ("customers", "products", "orders", "payments"):
        for (failed_rules,) in project.query(f"select failed_rules from quarantine.{table} where not is_resolved"):
            for reason in failed_rules.split(","):
                key = (f"quarantine.{table}", reason)
                expected[key] = expected.get(key, 0) + 1
    assert expected, "the world quarantines nothing: the comparison would prove nothing"
    assert {(row["table"], row["reason"]): row["open"] for row in status["quarantine"]} == expected

    human = elt("status")
    assert human.returncode == 0 and "last runs" in human.stdout and "unknown_customer" in human.stdout


def test_status_answers_while_a_writer_holds_the_warehouse(project: Project, tmp_path: Path) -> None:
    generate(project.root, WORLD, through_day=1)
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    settings = project.settings
    if settings.target == "postgres":
        with run_lock(settings):
            shown = elt("status", "--json")
        assert json.loads(shown.stdout)["warehouse"] == "ok" and json.loads(shown.stdout)["runs"]
        return
    with duckdb_file_held(settings.duckdb_path):
        shown = elt("status", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["warehouse"].startswith("busy: the DuckDB file is in use by another process"), status["warehouse"]
    assert all(source["cursor"] for source in status["sources"]), status["sources"]

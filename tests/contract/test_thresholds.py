"""`elt run`'s thresholds: a source's dead-letter rate (dead-lettered / extracted by that source in the run) and
the number of quarantine rows the run opened each give the run its own exit code — after everything it loaded
and built is kept, since the check comes after dbt — and the summary names the threshold and by how much it
was exceeded. Every exit code is distinct, and none is argparse's 2 for a command called wrong.

"Exceeds" is strict: a rate or a count equal to its limit passes. A source that extracted nothing never trips
the rate, nor does a refusal read again (a dead letter the warehouse already holds, unchanged). New quarantine
rows are counted by identity (key, version_key open after the build and not before), so a run that resolves as
many rows as it opens still counts what it opened, and a `--full-refresh`, which rewrites every row's
`first_seen_at`, opens none.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from loaders.core.outcomes import USAGE_ERROR, ExitCode
from loaders.core.registry import PROJECT_DIR
from loaders.core.settings import DEFAULT_MAX_DEAD_LETTER_RATE, Settings
from loaders.ops.run import elt_run
from tests.contract.records import customer, delivered, order, payment
from tests.support.cli import elt
from tests.support.project import SOURCES, Project

pytestmark = pytest.mark.warehouses("postgres")

NO_KEY = {"status": "paid", "currency": "EUR", "updated_at": "2024-03-01T12:00:00Z"}  # dead-lettered: no id
NOT_AN_OBJECT = '["not", "an", "object"]'


def plant(project: Project, orders: list[Any]) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.app_db.upsert_product(
        sku="SKU-1",
        name="Sku",
        category="tools",
        list_price="10.00",
        currency="EUR",
        active=1,
        updated_at="2024-03-01 09:00:00",
    )
    project.api_store.add_many(orders)


def run(project: Project, *dbt_args: str, sources: list[str] | None = None, **thresholds: Any) -> tuple[int, str]:
    code, line = elt_run(project.settings.with_thresholds(**thresholds), sources or SOURCES, list(dbt_args))
    return int(code), line


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return elt(*args, env=env, timeout=600)


def exceeded(line: str) -> str:
    """The summary's `thresholds exceeded: ...;` part ('' when none was)."""
    found = re.search(r"thresholds exceeded: (.*?); [0-9.]+s$", line)
    return found.group(1) if found else ""


# -- exit codes and settings (no warehouse) ---------------------------------------------------------------


def test_exit_codes_are_distinct_and_none_is_the_usage_error() -> None:
    values = [int(code) for code in ExitCode.__members__.values()]
    assert len(values) == len(set(values)), "two outcomes share an exit code"
    assert USAGE_ERROR == 2 and USAGE_ERROR not in values
    assert (ExitCode.DEAD_LETTER_THRESHOLD, ExitCode.QUARANTINE_THRESHOLD) == (6, 7)

    bogus = cli("run", "--bogus")
    assert bogus.returncode == USAGE_ERROR and "No such option: --bogus" in bogus.stderr
    for args in (["--max-dead-letter-rate", "1.5"], ["--max-dead-letter-rate", "x"], ["--max-new-quarantine", "-1"]):
        bad = cli("run", *args)
        assert bad.returncode == USAGE_ERROR, (args, bad.stderr)
        assert args[0] in bad.stderr, bad.stderr
    bad_env = cli("run", env={"ELT_MAX_DEAD_LETTER_RATE": "5%"})
    assert bad_env.returncode == USAGE_ERROR and "ELT_MAX_DEAD_LETTER_RATE" in bad_env.stderr, bad_env.stderr

    helped = cli("run", "--help")
    assert helped.returncode == 0
    listed = dict(re.findall(r"^ {1,4}(\d{1,2})  (.+?);?$", helped.stdout, flags=re.MULTILINE))
    assert set(listed) == {str(v) for v in [*values, USAGE_ERROR]}, helped.stdout
    assert "--max-dead-letter-rate" in listed["6"] and "--max-new-quarantine" in listed["7"]
    readme = (PROJECT_DIR / "README.md").read_text()
    for code in [*values, USAGE_ERROR]:
        assert re.search(rf"^\| `{code}` \|", readme, flags=re.MULTILINE), f"README does not list exit code {code}"


def test_thresholds_come_from_the_environment_with_defaults() -> None:
    default = Settings.from_env({})
    assert (default.max_dead_letter_rate, default.max_new_quarantine) == (DEFAULT_MAX_DEAD_LETTER_RATE, None)
    set_ = Settings.from_env({"ELT_MAX_DEAD_LETTER_RATE": "0.05", "ELT_MAX_NEW_QUARANTINE": "25"})
    assert (set_.max_dead_letter_rate, set_.max_new_quarantine) == (0.05, 25)
    assert Settings.from_env({"ELT_MAX_NEW_QUARANTINE": "none"}).max_new_quarantine is None
    overridden = set_.with_thresholds(max_dead_letter_rate=1, max_new_quarantine=None)
    assert (overridden.max_dead_letter_rate, overridden.max_new_quarantine) == (1, None)
    for variable, value in (("ELT_MAX_DEAD_LETTER_RATE", "-0.1"), ("ELT_MAX_NEW_QUARANTINE", "many")):
        with pytest.raises(ValueError, match=variable):
            Settings.from_env({variable: value})
    with pytest.raises(ValueError):
        default.with_thresholds(max_dead_letter_rate=2)


# -- runs (DuckDB and PostgreSQL) ---------------------------------------------------------------------------


def test_dead_letter_threshold_exits_with_its_code_after_landing_and_building_everything(project) -> None:
    valid = [order(f"o{n}") for n in (1, 2, 3)]
    plant(project, [*valid, NO_KEY, order("o_bad", status="bogus")])
    rows = [payment("p1"), payment("p2"), ["p_cut", "o1", "20.00"]]  # the last row has too few fields
    project.deliver("payments_20240301_01.csv", rows, delivered(2))

    code, line = run(project, max_dead_letter_rate=0, max_new_quarantine=0)

    assert code == ExitCode.DEAD_LETTER_THRESHOLD, line
    assert line.startswith(
        "elt run FAILED(dead_letter_threshold): shop_api extracted=5 landed=4 unchanged=0 dead_lettered=1;"
    )
    breaches = exceeded(line)
    assert "shop_api dead-letter rate 20.00% (1/5) > max 0.00% by 20.00 points" in breaches, line
    assert "payments_files dead-letter rate 33.33% (1/3) > max 0.00% by 33.33 points" in breaches, line
    assert "app_db" not in breaches, line  # nothing dead-lettered
    # both thresholds tripped: the smaller code wins, the summary names both
    assert "new quarantine rows 1 (orders=1) > max 0 by 1" in breaches, line
    # ... and everything was kept: landed, dead-lettered, built
    assert project.scalar("select count(*) from ops.dead_letters") == 2
    assert set(project.canonical("orders")) == {("o1",), ("o2",), ("o3",)}
    assert set(project.canonical("payments")) == {("p1",), ("p2",)}
    assert set(project.open_quarantine("orders")) == {"o_bad"}

    # a refusal read again is not a new one: the API re-reads its lookback, the same five records as raw
    # and the dead letters hold them, and no rate is tripped even at 0
    code, line = run(project, sources=["shop_api"], max_dead_letter_rate=0)
    assert code == ExitCode.OK, line
    assert "shop_api extracted=5 landed=0 unchanged=5 dead_lettered=0;" in line and not exceeded(line)
    assert project.scalar("select count(*) from ops.dead_letters") == 2

    # a rate equal to the limit does not exceed it: a new file, one of its four rows refused
    rows = [payment("p3"), payment("p4"), payment("p5"), ["p_cut2", "o1"]]
    project.deliver("payments_20240302_01.csv", rows, delivered(3))
    code, line = run(project, sources=["payments_files"], max_dead_letter_rate=0.25)
    assert code == ExitCode.OK, line
    assert "payments_files extracted=4 landed=3 unchanged=0 dead_lettered=1;" in line and not exceeded(line)

    # a source that extracted nothing never trips the rate, even at 0 (the settlement file is unchanged)
    code, line = run(project, sources=["payments_files"], max_dead_letter_rate=0)
    assert code == ExitCode.OK, line
    assert "payments_files extracted=0 landed=0 unchanged=0 dead_lettered=0;" in line


def test_new_quarantine_threshold_counts_the_rows_this_run_opened(project) -> None:
    plant(project, [order("o1"), order("o2", status="bogus")])
    code, line = run(project, max_new_quarantine=1)
    assert code == ExitCode.OK, line  # one new row, limit one: not exceeded
    assert set(project.open_quarantine("orders")) == {"o2"}

    # o2 is fixed (its row resolves), o3 and o4 open: one more open row than before, but two new ones
    later = "2024-03-01T13:00:00Z"
    project.api_store.add_many(
        [order("o2", updated_at=later), order("o3", status="bogus"), order("o4", shipping_country="ZZ")]
    )
    code, line = run(project, max_new_quarantine=1)

    assert code == ExitCode.QUARANTINE_THRESHOLD, line
    assert line.startswith("elt run FAILED(quarantine_threshold):"), line
    assert exceeded(line) == "new quarantine rows 2 (orders=2) > max 1 by 1", line
    assert "quarantine open customers=0 products=0 orders=2 payments=0;" in line
    # kept and built: the fix is canonical, the new rows are open
    assert project.canonical("orders")[("o2",)] is not None
    assert set(project.open_quarantine("orders")) == {"o3", "o4"}

    # a full refresh rewrites every row's first_seen_at but opens none: 0 new, limit 0, exit 0
    first_seen = "select first_seen_at from quarantine.orders where order_id = 'o3'"
    before = project.scalar(first_seen)
    code, line = run(project, "--full-refresh", max_new_quarantine=0)
    assert code == ExitCode.OK, line
    assert project.scalar(first_seen) != before, "a count by first_seen_at would have called o3 new"

    # and a run that opens one with limit 0 trips
    project.api_store.add(order("o5", status="bogus"))
    code, line = run(project, max_new_quarantine=0)
    assert code == ExitCode.QUARANTINE_THRESHOLD and exceeded(line) == "new quarantine rows 1 (orders=1) > max 0 by 1"


def test_command_line_thresholds_win_over_the_environment(project, monkeypatch) -> None:
    plant(project, [order("o1"), NOT_AN_OBJECT, order("o_bad", status="bogus")])

    monkeypatch.setenv("ELT_MAX_DEAD_LETTER_RATE", "1")
    monkeypatch.setenv("ELT_MAX_NEW_QUARANTINE", "none")
    first = cli("run", "--max-dead-letter-rate", "0")
    assert first.returncode == ExitCode.DEAD_LETTER_THRESHOLD, first.stdout + first.stderr[-3000:]
    assert "shop_api dead-letter rate 33.33% (1/3) > max 0.00%" in first.stdout

    project.api_store.add(order("o_worse", status="bogus"))
    monkeypatch.setenv("ELT_MAX_DEAD_LETTER_RATE", "0")
    monkeypatch.setenv("ELT_MAX_NEW_QUARANTINE", "0")
    second = cli("run", "--max-dead-letter-rate", "1", "--max-new-quarantine", "none")
    assert second.returncode == ExitCode.OK, second.stdout + second.stderr[-3000:]
    assert set(project.open_quarantine("orders")) == {"o_bad", "o_worse"}

    # without options the environment applies: a new damaged record trips the rate (the one before, served
    # again, is not taken twice)
    project.api_store.add('["another", "damaged", "record"]')
    third = cli("run")
    assert third.returncode == ExitCode.DEAD_LETTER_THRESHOLD, third.stdout + third.stderr[-3000:]
    assert "> max 0.00%" in third.stdout


@pytest.mark.parametrize("command", [["run"], ["load"], ["build"], ["replay", "--dry-run"]])
def test_an_unreachable_warehouse_is_one_line_and_its_own_exit_code(command: list[str]) -> None:
    from tests.support.postgres import free_port

    password = "unreachable-" + os.urandom(8).hex()
    env = {"ELT_TARGET": "postgres", "PGHOST": "127.0.0.1", "PGPORT": str(free_port()), "PGPASSWORD": password}
    proc = cli(*command, env=env)
    assert proc.returncode == ExitCode.WAREHOUSE_UNREACHABLE, proc.stdout + proc.stderr
    lines = [json.loads(line) for line in proc.stderr.strip().splitlines()]  # stderr in a pipe: JSON events
    assert len(lines) == 1 and lines[0]["event"] == "command_failed", proc.stderr
    message = lines[0]["message"]
    assert message.startswith(f"elt {command[0]} FAILED(warehouse): cannot connect"), message
    assert "refused" in message, message
    assert password not in proc.stdout + proc.stderr

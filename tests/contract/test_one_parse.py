"""The harness's dbt commands share one parse: dbt re-parses the whole project when its vars or its
connection change, so `elt` passes the same `--vars` every time (ELT_LOOKBACK_VERSIONS) and keeps a target
folder of its own, and a run after a run parses only what changed (here: nothing)."""

from __future__ import annotations

import json
from typing import Any

from tests.contract.records import customer, order
from tests.support.cli import elt
from tests.support.project import Project

FULL_PARSE = "Unable to do partial parsing"


def events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_a_run_after_a_run_does_not_parse_the_project_again(project: Project) -> None:
    env = {"ELT_LOOKBACK_VERSIONS": "5"}
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    first = elt("run", env=env)
    assert first.returncode == 0, first.stderr[-2000:]

    project.api_store.add(order("o2"))
    second = elt("run", env=env)
    assert second.returncode == 0, second.stderr[-2000:]

    started = [e for e in events(second.stderr) if e.get("event") == "dbt_started"]
    assert started and all(e["args"][-2:] == ["--vars", '{"lookback_versions": 5}'] for e in started), started
    dbt_messages = [e.get("msg") or "" for e in events(second.stderr) if e.get("event") == "dbt_log"]
    assert dbt_messages, "the run's dbt log was not in its event stream"
    assert not [m for m in dbt_messages if FULL_PARSE in m], [m for m in dbt_messages if "parsing" in m]
    assert project.scalar("select count(*) from analytics.orders") == 2

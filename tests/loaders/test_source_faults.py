"""Faults at the three sources, each kind to its outcome, on both warehouses.

- The orders API's transient faults (429 with Retry-After, 500/502/503/504, timeouts, dropped
  connections, bodies cut short, non-JSON bodies, empty pages that still have a `next_cursor`) are
  retried or followed, and every page lands; the server sees exactly the requests the faults explain.
- A transient fault that persists fails the source within its bounds (attempts, deadline, the cap on one
  wait), with one line naming the source, what happened and the setting to check; a fatal one (400, 401,
  403, 404) fails it at the first answer, never retried.
- A failed load moves no state: no load is recorded, no cursor or manifest moves, and the next good run
  lands everything, what the failed one missed included.
- The token appears in no output, log or file of a run, however it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dlt
import pytest
import requests
from tenacity import RetryCallState

from loaders.core.outcomes import ExitCode, SourceOutcome
from loaders.core.registry import pipeline_name
from loaders.ops.load import load_sources
from loaders.simulate import FaultPlan
from loaders.simulate.api_server import FATAL_FAULTS
from loaders.sources.shop_api.helpers import OrdersPaginator, RetryPolicy, ShopApiError
from tests.contract.records import customer, delivered, order, payment
from tests.support.project import Project

PAGES = 4  # 10 orders in pages of 3
ORDERS = 10

TRANSIENT = ["429", "500", "502", "503", "504", "slow", "drop", "truncate", "not_json", "truncate_json", "empty_page"]


@pytest.fixture
def api_project(warehouse, tmp_path, monkeypatch):
    """A project whose API serves 10 orders in pages of 3, with quick retries and a short timeout."""
    with Project.started(warehouse, tmp_path, monkeypatch) as project:
        monkeypatch.setenv("SOURCES__SHOP_API__PAGE_SIZE", "3")
        monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_TIMEOUT", "0.5")
        monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_BACKOFF_FACTOR", "0.05")
        plant_orders(project, range(ORDERS))
        yield project


def plant_orders(project: Project, numbers: Any) -> None:
    project.api_store.add_many(order(f"o{n:02d}", updated_at=f"2024-03-01T{n % 24:02d}:00:00Z") for n in numbers)


def load(project: Project, source: str) -> SourceOutcome:
    (outcome,) = load_sources(project.settings, [source])
    return outcome


def committed(project: Project, source: str) -> tuple[Any, ...]:
    """What a load moves: the loads recorded in the warehouse, the state rows, the local resource state."""
    dataset = f"raw_{source}"
    loads = project.scalar(f"select count(*) from {dataset}._dlt_loads")
    states = project.query(f"select version, state from {dataset}._dlt_pipeline_state order by version")
    local = dlt.attach(pipeline_name(source), pipelines_dir=str(project.pipelines_dir)).state
    return loads, states, json.dumps(local.get("sources", {}), sort_keys=True, default=str)


def landed_ids(project: Project) -> set[str]:
    return {row[0] for row in project.query("select id from raw_shop_api.orders")}


# -- transient faults: retried, every page lands -------------------------------------------------


@pytest.mark.parametrize("fault", TRANSIENT)
def test_a_transient_fault_twice_on_a_page_is_retried_and_every_page_lands(api_project, fault) -> None:
    api_project.api.faults = FaultPlan(sequence=("ok", fault, fault), retry_after_seconds=1, slow_seconds=1.5)
    started = time.monotonic()
    outcome = load(api_project, "shop_api")
    seconds = time.monotonic() - started

    assert outcome.error is None and (outcome.landed, outcome.dead_lettered) == (ORDERS, 0)
    assert landed_ids(api_project) == {f"o{n:02d}" for n in range(ORDERS)}
    # each fault cost one request: a retry, or (an empty page) one more page followed
    assert api_project.api.requests_served == PAGES + 2
    if fault == "429":
        assert seconds >= 2 * 1  # Retry-After: 1, honoured twice


def test_random_faults_of_every_transient_kind_lose_nothing(api_project) -> None:
    kinds = tuple(TRANSIENT)
    api_project.api.faults = FaultPlan(rate=0.5, seed=0, random_faults=kinds, retry_after_seconds=0, slow_seconds=1)
    api_project.monkeypatch.setenv("SOURCES__SHOP_API__PAGE_SIZE", "1")
    api_project.monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_MAX_ATTEMPTS", "10")
    outcome = load(api_project, "shop_api")

    assert outcome.error is None and outcome.landed == ORDERS
    assert landed_ids(api_project) == {f"o{n:02d}" for n in range(ORDERS)}
    drawn = [api_project.api.faults.fault_for(n) for n in range(1, api_project.api.requests_served + 1)]
    assert sum(f != "ok" for f in drawn) >= 10 and len(set(drawn)) >= 8  # the run did meet faults, of many kinds
    assert api_project.api.requests_served == ORDERS + sum(f != "ok" for f in drawn)


# -- transient faults that persist: bounded, clear, nothing moves ----------------------------------

PERSISTENT = {
    "503": "answered 503 Service Unavailable",
    "429": "answered 429 Too Many Requests",
    "slow": "timed out after 0.5s (SOURCES__SHOP_API__REQUEST_TIMEOUT)",
    "drop": "dropped the connection or could not be reached",
    "truncate": "sent a body cut short of its length",
    "not_json": "answered 200 with a body that is not an orders page (not JSON, or cut short)",
    "truncate_json": "answered 200 with a body that is not an orders page (not JSON, or cut short)",
}


@pytest.mark.parametrize("fault", sorted(PERSISTENT))
def test_a_persisting_transient_fault_fails_within_the_attempts_and_moves_nothing(api_project, fault) -> None:
    project = api_project
    assert load(project, "shop_api").landed == ORDERS
    before = committed(project, "shop_api")
    plant_orders(project, range(ORDERS, ORDERS + 5))
    project.monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_MAX_ATTEMPTS", "3")
    project.api.faults = FaultPlan(sequence=("ok",), every_nth=1, fault=fault, retry_after_seconds=0, slow_seconds=1)
    served = project.api.requests_served

    outcome = load(project, "shop_api")

    assert outcome.error is not None
    assert outcome.error.startswith(
        f"ShopApiError: shop_api: GET /v1/orders {PERSISTENT[fault]}, still failing after 3 attempts in"
    )
    assert "SOURCES__SHOP_API__REQUEST_MAX_ATTEMPTS" in outcome.error
    assert project.api.requests_served - served == 1 + 3  # the first page, then 3 attempts at the second
    assert committed(project, "shop_api") == before

    project.api.faults = FaultPlan()
    assert load(project, "shop_api").error is None
    assert landed_ids(project) == {f"o{n:02d}" for n in range(ORDERS + 5)}


def test_the_deadline_bounds_a_page_whatever_the_attempts_allow(api_project, monkeypatch) -> None:
    monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_MAX_ATTEMPTS", "1000")
    monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_BACKOFF_FACTOR", "0.2")
    monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_DEADLINE", "1.5")
    api_project.api.faults = FaultPlan(every_nth=1, fault="502")
    started = time.monotonic()
    outcome = load(api_project, "shop_api")
    seconds = time.monotonic() - started

    assert outcome.error is not None and "answered 502 Bad Gateway, still failing after" in outcome.error
    assert 2 <= api_project.api.requests_served <= 8  # 0.2 s doubling, jittered, inside 1.5 s
    assert seconds < 1.5 + 5  # the deadline, plus what a load costs anyway


def test_a_retry_after_beyond_the_cap_waits_only_the_cap(api_project, monkeypatch) -> None:
    monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("SOURCES__SHOP_API__REQUEST_MAX_RETRY_DELAY", "0.2")
    api_project.api.faults = FaultPlan(every_nth=1, fault="429", retry_after_seconds=3600)
    started = time.monotonic()
    outcome = load(api_project, "shop_api")

    assert (
        outcome.error is not None and "answered 429 Too Many Requests, still failing after 3 attempts" in outcome.error
    )
    assert api_project.api.requests_served == 3
    assert time.monotonic() - started < 10


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff_factor=1.0, max_retry_delay=10.0)

    def waits(attempt: int) -> list[float]:
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        state.set_exception((requests.ConnectionError, requests.ConnectionError("dropped"), None))
        return [policy.wait(state) for _ in range(200)]

    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 10.0), (9, 10.0)]:
        drawn = waits(attempt)
        assert all(full * 0.5 <= wait <= full for wait in drawn)
        assert len(set(drawn)) > 100  # jittered, not a fixed schedule

    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    answer = requests.Response()
    answer.status_code, answer.headers["Retry-After"] = 429, "7"
    state.set_result(answer)
    assert policy.wait(state) == 7.0  # the server's Retry-After is honoured


# -- empty pages: followed, but never for ever -----------------------------------------------------


def test_endless_empty_pages_stop_the_run_clearly(api_project, monkeypatch) -> None:
    monkeypatch.setenv("SOURCES__SHOP_API__MAX_EMPTY_PAGES", "5")
    api_project.api.faults = FaultPlan(sequence=("ok",), every_nth=1, fault="empty_page")
    outcome = load(api_project, "shop_api")

    assert outcome.error == (
        "ShopApiError: shop_api: GET /v1/orders answered 6 empty pages in a row, each with a next_cursor"
        " (stopped, not retried; check the service, or raise SOURCES__SHOP_API__MAX_EMPTY_PAGES)"
    )
    assert api_project.api.requests_served == 1 + 6


def test_a_cursor_given_twice_stops_the_pagination() -> None:
    def page(cursor: str | None, data: list[Any]) -> requests.Response:
        answer = requests.Response()
        answer.status_code = 200
        answer._content = json.dumps({"data": data, "next_cursor": cursor}).encode()
        return answer

    paginator = OrdersPaginator(max_empty_pages=100)
    paginator.update_state(page("A", [1]), [1])
    paginator.update_state(page("B", []), [])
    with pytest.raises(ShopApiError, match="gave a next_cursor it had already given, after 3 pages"):
        paginator.update_state(page("A", [2]), [2])


# -- fatal answers: at once, clearly --------------------------------------------------------------

CHECK = {
    "400": "SOURCES__SHOP_API__PAGE_SIZE (1..1000) and SOURCES__SHOP_API__BASE_URL",
    "401": "SOURCES__SHOP_API__TOKEN",
    "403": "SOURCES__SHOP_API__TOKEN",
    "404": "SOURCES__SHOP_API__BASE_URL",
}
REASON = {"400": "Bad Request", "401": "Unauthorized", "403": "Forbidden", "404": "Not Found"}


@pytest.mark.parametrize("fault", FATAL_FAULTS)
def test_a_fatal_answer_fails_at_once_and_moves_nothing(api_project, fault) -> None:
    project = api_project
    assert load(project, "shop_api").error is None
    before = committed(project, "shop_api")
    plant_orders(project, range(ORDERS, ORDERS + 5))
    project.api.faults = FaultPlan(sequence=("ok", fault))  # the second page of this run
    served = project.api.requests_served

    outcome = load(project, "shop_api")

    assert outcome.error == (
        f"ShopApiError: shop_api: GET /v1/orders answered {fault} {REASON[fault]} (fatal, not retried;"
        f" check {CHECK[fault]})"
    )
    assert project.api.requests_served - served == 2  # never retried
    assert committed(project, "shop_api") == before  # the first page of the failed run did not land either

    project.api.faults = FaultPlan()
    assert load(project, "shop_api").error is None
    assert landed_ids(project) == {f"o{n:02d}" for n in range(ORDERS + 5)}


def test_the_token_appears_in_no_output_log_or_file(api_project) -> None:
    """Every fault kind, then a fatal 403, through the command line with dlt logging at DEBUG."""
    project = api_project
    project.api.faults = FaultPlan(sequence=("ok", *TRANSIENT, "403"), retry_after_seconds=0, slow_seconds=1)
    env = {
        **os.environ,
        "RUNTIME__LOG_LEVEL": "DEBUG",
        "SOURCES__SHOP_API__REQUEST_MAX_ATTEMPTS": "12",
        "SOURCES__SHOP_API__REQUEST_MAX_RETRY_DELAY": "0.2",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "load", "shop_api"], env=env, capture_output=True, text=True, timeout=300
    )

    assert proc.returncode == ExitCode.LOAD_FAILED
    assert "shop_api FAILED (ShopApiError: shop_api: GET /v1/orders answered 403 Forbidden" in proc.stdout
    assert project.api.requests_served == 1 + len(TRANSIENT) + 1
    assert project.token not in proc.stdout + proc.stderr
    for path in project.root.parent.rglob("*"):  # the sources, dlt's working folder, a DuckDB warehouse
        if path.is_file():
            assert project.token.encode() not in path.read_bytes(), path


# -- the app database and the payments folder -----------------------------------------------------


def bad_app_db_urls(root: Path) -> dict[str, tuple[str, str]]:
    """name -> (URL, the start of the message); none of the messages may show the password."""
    return {
        "missing_file": (
            f"sqlite:///{root / 'missing.db'}",
            f"AppDbError: app_db: the SQLite database file {root / 'missing.db'} does not exist"
            " (check SOURCES__APP_DB__CREDENTIALS)",
        ),
        "not_a_database": (
            f"sqlite:///{root / 'notes.txt'}",
            f"AppDbError: app_db: cannot reach sqlite:///{root / 'notes.txt'}: DatabaseError: file is not a database",
        ),
        "unparseable": (
            "loader:pw-s3cret@db.internal/shop",
            "AppDbError: app_db: the database URL cannot be parsed as a SQLAlchemy URL"
            " (check SOURCES__APP_DB__CREDENTIALS)",
        ),
        "server_down": (
            "postgresql+psycopg2://loader:pw-s3cret@127.0.0.1:9/shop",
            "AppDbError: app_db: cannot reach postgresql+psycopg2://loader:***@127.0.0.1:9/shop: OperationalError: ",
        ),
        "no_tables": (
            f"sqlite:///{root / 'empty.db'}",
            f"AppDbError: app_db: no table customers in the default schema of sqlite:///{root / 'empty.db'}",
        ),
    }


@pytest.mark.parametrize("case", ["missing_file", "not_a_database", "unparseable", "server_down", "no_tables"])
def test_an_unreachable_app_db_fails_clearly_moves_nothing_and_the_next_run_lands_all(project, case) -> None:
    import sqlite3

    sqlite3.connect(project.root / "empty.db").execute("create table other (x)").connection.close()
    (project.root / "notes.txt").write_text("not a database, but it is long enough to have a header " * 10)
    project.app_db.upsert_customer(**customer("c1"))
    assert load(project, "app_db").landed == 1
    before = committed(project, "app_db")
    project.app_db.upsert_customer(**customer("c2", updated_at="2024-03-02 09:00:00"))
    good_url = os.environ["SOURCES__APP_DB__CREDENTIALS"]
    url, message = bad_app_db_urls(project.root)[case]
    project.monkeypatch.setenv("SOURCES__APP_DB__CREDENTIALS", url)

    outcome = load(project, "app_db")

    assert outcome.error is not None and outcome.error.startswith(message), outcome.error
    assert "SOURCES__APP_DB__CREDENTIALS" in outcome.error and "pw-s3cret" not in outcome.error
    assert not (project.root / "missing.db").exists()  # SQLite was not allowed to create an empty one
    assert committed(project, "app_db") == before

    project.monkeypatch.setenv("SOURCES__APP_DB__CREDENTIALS", good_url)
    assert load(project, "app_db").error is None
    assert {row[0] for row in project.query("select id from raw_app_db.customers")} == {"c1", "c2"}


def test_a_missing_payments_folder_fails_clearly_moves_nothing_and_the_next_run_lands_all(project) -> None:
    folder = project.root / "payments"
    project.deliver("payments_20240301_01.csv", [payment("p1")], delivered(2))
    assert load(project, "payments_files").landed == 1
    before = committed(project, "payments_files")
    project.deliver("payments_20240302_01.csv", [payment("p2")], delivered(3))
    folder.rename(project.root / "payments-away")

    outcome = load(project, "payments_files")

    assert outcome.error == (
        f"PaymentsFolderMissing: payments_files: the folder {folder} does not exist"
        " (check SOURCES__PAYMENTS_FILES__BUCKET_URL)"
    )
    assert committed(project, "payments_files") == before

    (project.root / "payments-away").rename(folder)
    assert load(project, "payments_files").landed == 1
    assert {row[0] for row in project.query("select payment_id from raw_payments_files.payments")} == {"p1", "p2"}

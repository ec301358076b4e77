"""The simulated orders API behaves as contract 1.1 says, and its faults come exactly as planned."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import requests

from loaders.simulate import ApiServer, ApiStore, FaultPlan, SimulationConfig, generate

TOKEN = "s3cr3t-token-0f-the-shop"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TIMEOUT = 5


def _order(order_id: str, updated_at: str | None, status: str = "placed") -> dict[str, Any]:
    return {
        "id": order_id,
        "status": status,
        "updated_at": updated_at,
        "items": [{"line": 1, "quantity": "2"}],
    }


def _store_scenario(root: Path) -> list[Any]:
    """Plant versions in api.db; return the served set as the contract defines it, computed here."""
    versions: list[Any] = []
    for n in range(1, 31):
        # Three orders share each timestamp, so the id breaks ties.
        stamp = f"2024-03-01T{10 + n // 3:02d}:00:00Z"
        versions.append(_order(f"o_{n:03d}", stamp))
    for n in range(1, 31, 4):
        versions.append(_order(f"o_{n:03d}", f"2024-03-02T{n % 24:02d}:30:00Z", status="paid"))
    # A late version: added last, so it is the current state although its updated_at is older.
    versions.append(_order("o_002", "2024-03-01T10:30:00Z", status="cancelled"))
    # Spellings other than the normalised one still sort and filter as timestamps.
    versions.append(_order("o_031", "2024-03-02T08:00:00+00:00"))
    # Unlandable bodies, served individually: no id, null id, not an object, and no parseable updated_at.
    versions += [
        {"status": "paid", "updated_at": "2024-03-01T12:00:00Z"},
        {"id": None, "status": "paid"},
        json.dumps("o_099 but double-encoded"),
        json.dumps([_order("o_098", "2024-03-01T12:00:00Z")]),
        _order("o_032", "not-a-date"),
    ]
    ApiStore(root).add_many(versions)

    latest: dict[Any, tuple[int, Any]] = {}
    for seq, version in enumerate(versions, start=1):
        body = json.loads(version) if isinstance(version, str) else version
        order_id = body.get("id") if isinstance(body, dict) else None
        latest[order_id if order_id is not None else ("no-id", seq)] = (seq, body)

    def sort_key(item: tuple[int, Any]) -> tuple[str, str, int]:
        seq, body = item
        if not isinstance(body, dict):
            return ("", "", seq)
        stamp = body.get("updated_at") or ""
        stamp = stamp.replace("+00:00", "Z") if stamp.startswith("2024") else ""
        return (stamp, body.get("id") or "", seq)

    return [body for _, body in sorted(latest.values(), key=sort_key)]


@pytest.fixture
def scenario(tmp_path: Path) -> tuple[Path, list[Any]]:
    return tmp_path, _store_scenario(tmp_path)


@pytest.fixture
def api(scenario: tuple[Path, list[Any]]) -> Iterator[ApiServer]:
    with ApiServer(scenario[0], token=TOKEN) as server:
        yield server


def _get(api: ApiServer, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
    return requests.get(f"{api.base_url}/v1/orders", params=params, headers=headers or AUTH, timeout=TIMEOUT)


def _all_pages(api: ApiServer, **params: Any) -> tuple[list[Any], list[int]]:
    served: list[Any] = []
    sizes: list[int] = []
    cursor = None
    while True:
        response = _get(api, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        page = response.json()
        served += page["data"]
        sizes.append(len(page["data"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return served, sizes


def test_a_missing_or_wrong_token_gets_401_and_the_token_never_shows(
    api: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [
        requests.get(f"{api.base_url}/v1/orders", timeout=TIMEOUT),
        _get(api, headers={"Authorization": "Bearer not-the-token"}),
        _get(api, headers={"Authorization": f"Basic {TOKEN}"}),
        _get(api, headers={"Authorization": TOKEN}),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 401]
    assert all(a.json()["error"]["status"] == 401 for a in answers)
    assert _get(api, limit=5).status_code == 200
    for answer in answers:
        assert TOKEN not in answer.text
        assert TOKEN not in str(answer.headers)
    assert "GET /v1/orders 401" in caplog.text
    assert "GET /v1/orders 200" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "-1"},
        {"limit": "abc"},
        {"limit": "2.5"},
        {"updated_since": "yesterday"},
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJhIl0"},  # valid base64 of valid JSON, but not a cursor this API issued
    ],
)
def test_a_query_outside_the_contract_gets_400(api: ApiServer, params: dict[str, str]) -> None:
    response = _get(api, **params)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == 400


def test_limit_bounds_are_inclusive(api: ApiServer) -> None:
    assert len(_get(api, limit="1").json()["data"]) == 1
    assert _get(api, limit="1000").status_code == 200


def test_unknown_paths_get_404(api: ApiServer) -> None:
    assert requests.get(f"{api.base_url}/v1/customers", headers=AUTH, timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{api.base_url}/", headers=AUTH, timeout=TIMEOUT).status_code == 404


def test_pages_of_seven_serve_every_order_once_in_updated_at_then_id_order(
    api: ApiServer, scenario: tuple[Path, list[Any]]
) -> None:
    served, sizes = _all_pages(api, limit=7)
    expected = scenario[1]
    assert served == expected
    assert sizes[:-1] == [7] * (len(sizes) - 1)
    assert len(sizes) == math.ceil(len(expected) / 7)
    ids = [b["id"] for b in served if isinstance(b, dict) and b.get("id")]
    assert len(ids) == len(set(ids))


def test_default_page_size_is_100_and_pages_of_one_cross_every_boundary(
    api: ApiServer, scenario: tuple[Path, list[Any]]
) -> None:
    assert len(_get(api).json()["data"]) == min(100, len(scenario[1]))
    assert _all_pages(api, limit=1)[0] == scenario[1]


def test_only_the_latest_version_of_each_order_is_served(api: ApiServer) -> None:
    served = {b["id"]: b for b in _all_pages(api, limit=1000)[0] if isinstance(b, dict) and b.get("id")}
    assert served["o_002"]["status"] == "cancelled"  # added last, though its updated_at is older
    assert served["o_005"]["status"] == "paid"
    assert served["o_003"]["status"] == "placed"
    assert served["o_031"]["updated_at"] == "2024-03-02T08:00:00+00:00"  # the body is served as stored


def test_updated_since_is_inclusive_and_rows_without_a_timestamp_always_come(api: ApiServer) -> None:
    since = "2024-03-01T15:00:00Z"
    served, _ = _all_pages(api, updated_since=since, limit=4)
    stamped = [b for b in served if isinstance(b, dict) and (b.get("updated_at") or "").startswith("2024")]
    assert stamped
    assert all(b["updated_at"].replace("+00:00", "Z") >= since for b in stamped)
    assert [b["id"] for b in stamped if b["updated_at"] == since] == ["o_015", "o_016"]
    assert sum(not isinstance(b, dict) or not (b.get("updated_at") or "").startswith("2024") for b in served) == 4
    # The same instant in another ISO-8601 spelling selects the same rows.
    assert _all_pages(api, updated_since="2024-03-01T16:00:00+01:00", limit=4)[0] == served


def test_the_server_reads_the_store_on_every_request(api: ApiServer, scenario: tuple[Path, list[Any]]) -> None:
    before = _all_pages(api, limit=100)[0]
    ApiStore(scenario[0]).add(_order("o_500", "2024-03-05T00:00:00Z", status="paid"))
    after = _all_pages(api, limit=100)[0]
    assert after == [*before, _order("o_500", "2024-03-05T00:00:00Z", status="paid")]


def test_planned_faults_come_in_sequence_then_every_nth(scenario: tuple[Path, list[Any]]) -> None:
    plan = FaultPlan(sequence=("429", "503", "ok", "500", "502", "504"), every_nth=9, fault="503")
    with ApiServer(scenario[0], token=TOKEN, faults=plan) as api:
        answers = [_get(api, limit=3) for _ in range(10)]
        assert [a.status_code for a in answers] == [429, 503, 200, 500, 502, 504, 200, 200, 503, 200]
        assert answers[0].headers["Retry-After"] == "1"
        assert "Retry-After" not in answers[1].headers
        assert api.requests_served == 10


def test_retry_after_seconds_are_configurable(scenario: tuple[Path, list[Any]]) -> None:
    with ApiServer(scenario[0], token=TOKEN, faults=FaultPlan(sequence=("429",), retry_after_seconds=7)) as api:
        assert _get(api).headers["Retry-After"] == "7"


def test_a_dropped_connection_gets_no_response_at_all(scenario: tuple[Path, list[Any]]) -> None:
    with ApiServer(scenario[0], token=TOKEN, faults=FaultPlan(sequence=("drop",))) as api:
        with pytest.raises(requests.ConnectionError):
            _get(api)
        assert _get(api).status_code == 200


def test_a_truncated_body_breaks_off_before_its_content_length(scenario: tuple[Path, list[Any]]) -> None:
    with ApiServer(scenario[0], token=TOKEN, faults=FaultPlan(sequence=("truncate",))) as api:
        with pytest.raises(requests.RequestException):
            _get(api).json()
        assert _get(api).status_code == 200


def test_a_slow_answer_trips_a_client_timeout(scenario: tuple[Path, list[Any]]) -> None:
    plan = FaultPlan(sequence=("slow",), slow_seconds=0.5)
    with ApiServer(scenario[0], token=TOKEN, faults=plan) as api, pytest.raises(requests.Timeout):
        requests.get(f"{api.base_url}/v1/orders", headers=AUTH, timeout=0.1)


def test_random_faults_are_a_function_of_seed_and_request_number() -> None:
    plan = FaultPlan.from_rate(0.3, seed=11)
    drawn = [plan.fault_for(n) for n in range(1, 401)]
    assert drawn == [FaultPlan.from_rate(0.3, seed=11).fault_for(n) for n in range(1, 401)]
    assert 80 <= sum(f != "ok" for f in drawn) <= 160
    assert {"429", "500", "503", "drop"} <= set(drawn)
    assert all(f == "ok" for f in (FaultPlan().fault_for(n) for n in range(1, 50)))


def test_a_generated_world_pages_through_completely(tmp_path: Path) -> None:
    generate(tmp_path, SimulationConfig(), through_day=3)
    with closing(sqlite3.connect(tmp_path / "api.db")) as conn:
        ids = {row[0] for row in conn.execute("select id from order_versions where id is not null")}
        nameless = conn.execute("select count(*) from order_versions where id is null").fetchone()[0]
    with ApiServer(tmp_path, token=TOKEN) as api:
        served, _ = _all_pages(api, limit=50)
    served_ids = [b["id"] for b in served if isinstance(b, dict) and b.get("id")]
    assert sorted(served_ids) == sorted(ids)
    assert len(served) == len(ids) + nameless

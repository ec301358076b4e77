"""The simulated API's fault kinds beyond the status codes: each looks on the wire as the fault it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from loaders.simulate import ApiServer, ApiStore, FaultPlan
from loaders.simulate.api_server import FATAL_FAULTS, decode_cursor

TOKEN = "t0ken-of-the-fault-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ApiStore(tmp_path).add_many({"id": f"o{n}", "updated_at": f"2024-03-01T1{n}:00:00Z", "items": []} for n in range(5))
    return tmp_path


def get(api: ApiServer, **params: str) -> requests.Response:
    return requests.get(f"{api.base_url}/v1/orders", params=params, headers=AUTH, timeout=5)


def test_not_json_is_a_200_html_page(root: Path) -> None:
    with ApiServer(root, token=TOKEN, faults=FaultPlan(sequence=("not_json",))) as api:
        answer = get(api)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/html"
        with pytest.raises(ValueError):
            answer.json()
        assert get(api).json()["data"]


def test_truncate_json_is_a_complete_transfer_of_half_a_body(root: Path) -> None:
    with ApiServer(root, token=TOKEN, faults=FaultPlan(sequence=("truncate_json",))) as api:
        cut = get(api, limit="5")
        whole = get(api, limit="5")
        assert cut.status_code == 200 and int(cut.headers["Content-Length"]) == len(cut.content)
        assert whole.content.startswith(cut.content) and len(cut.content) == len(whole.content) // 2
        with pytest.raises(ValueError):
            json.loads(cut.content)


def test_an_empty_page_resumes_where_the_request_was_with_a_fresh_cursor(root: Path) -> None:
    plan = FaultPlan(sequence=("ok", "empty_page", "empty_page"))
    with ApiServer(root, token=TOKEN, faults=plan) as api:
        first = get(api, limit="2").json()
        empty = get(api, limit="2", cursor=first["next_cursor"]).json()
        again = get(api, limit="2", cursor=empty["next_cursor"]).json()
        rest = get(api, limit="2", cursor=again["next_cursor"]).json()
    assert empty["data"] == [] == again["data"]
    assert len({first["next_cursor"], empty["next_cursor"], again["next_cursor"]}) == 3
    assert decode_cursor(empty["next_cursor"]) == decode_cursor(first["next_cursor"])
    assert [o["id"] for o in first["data"] + rest["data"]] == ["o0", "o1", "o2", "o3"]


def test_an_empty_first_page_still_leads_to_every_order(root: Path) -> None:
    with ApiServer(root, token=TOKEN, faults=FaultPlan(sequence=("empty_page",))) as api:
        empty = get(api, limit="5").json()
        page = get(api, limit="5", cursor=empty["next_cursor"]).json()
    assert empty["data"] == [] and [o["id"] for o in page["data"]] == [f"o{n}" for n in range(5)]


@pytest.mark.parametrize("fault", FATAL_FAULTS)
def test_fatal_statuses_are_injected_with_an_error_body(root: Path, fault: str) -> None:
    with ApiServer(root, token=TOKEN, faults=FaultPlan(sequence=(fault,))) as api:
        answer = get(api)
        assert answer.status_code == int(fault) and answer.json()["error"]["status"] == int(fault)
        assert "Retry-After" not in answer.headers
        assert get(api).status_code == 200


def test_random_faults_draw_from_the_kinds_asked_for() -> None:
    plan = FaultPlan(rate=1.0, random_faults=("not_json", "empty_page"))
    assert {plan.fault_for(n) for n in range(1, 100)} == {"not_json", "empty_page"}

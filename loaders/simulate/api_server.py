"""The orders API of contract 1.1 (`GET /v1/orders`), served from `root/api.db`, with planned faults.

Every request opens its own connection to api.db, so a world advanced by `generate` while the server
runs is served from the next request on. The bearer token is compared in constant time and never
logged or echoed; the request log says method, path and status only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from random import Random
from types import TracebackType
from typing import Annotated, Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from loaders.simulate.stores import ApiStore, SortKey
from loaders.simulate.timestamps import iso_timestamp, parse_timestamp

logger = logging.getLogger(__name__)

ORDERS_PATH = "/v1/orders"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

Fault = Literal[
    "ok",
    # transient: a client must retry them (contract 1.1), or, for the last three, read on
    "429",
    "500",
    "502",
    "503",
    "504",
    "drop",
    "truncate",
    "slow",
    "not_json",
    "truncate_json",
    "empty_page",
    # fatal: "any other 4xx is fatal for that run"
    "400",
    "401",
    "403",
    "404",
]
TRANSIENT_FAULTS: tuple[Fault, ...] = ("429", "500", "502", "503", "504", "drop", "truncate")
FATAL_FAULTS: tuple[Fault, ...] = ("400", "401", "403", "404")
_STATUS_FAULTS = ("429", "500", "502", "503", "504", *FATAL_FAULTS)
NOT_JSON_BODY = b"<html><head><title>Service Unavailable</title></head><body>upstream hiccup</body></html>"


class FaultPlan(BaseModel):
    """Which requests (numbered from 1, every path, in arrival order) get which fault.

    The `sequence` decides the first requests ("ok" for a normal answer); after it, every `every_nth`
    request gets `fault`; otherwise each request gets one of `random_faults` with probability `rate`,
    drawn from (seed, request number) so a replay meets the same faults.

    - "429" (with `Retry-After: retry_after_seconds`), "500", "502", "503", "504": that status, a JSON
      error body; "400", "401", "403", "404": the same, for the fatal answers.
    - "slow": the normal answer after `slow_seconds` (beyond a client's timeout).
    - "drop": the connection closes without a response.
    - "truncate": Content-Length promises more bytes than are sent, then the connection closes.
    - "truncate_json": a 200 whose body is the normal answer cut in half, with a Content-Length that
      matches the cut (the transfer looks complete; the JSON is not).
    - "not_json": a 200 with an HTML page (a proxy's or a captive portal's answer).
    - "empty_page": a 200 with `"data": []` and a `next_cursor` that resumes where the request was (a
      fresh token each time, as a service that scanned a shard with nothing visible would give).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: tuple[Fault, ...] = ()
    every_nth: Annotated[int, Field(ge=1)] | None = None
    fault: Fault = "503"
    rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    seed: int = 0
    retry_after_seconds: Annotated[int, Field(ge=0)] = 1
    slow_seconds: Annotated[float, Field(ge=0.0)] = 2.0
    random_faults: tuple[Fault, ...] = TRANSIENT_FAULTS

    @classmethod
    def from_rate(cls, rate: float, seed: int = 0) -> FaultPlan:
        return cls(rate=rate, seed=seed)

    def fault_for(self, request_number: int) -> Fault:
        if request_number <= len(self.sequence):
            return self.sequence[request_number - 1]
        if self.every_nth is not None and request_number % self.every_nth == 0:
            return self.fault
        if self.rate > 0.0:
            rng = Random(f"{self.seed}:{request_number}")
            if rng.random() < self.rate:
                return rng.choice(self.random_faults)
        return "ok"


class BadRequest(ValueError):
    """A query the contract does not allow: answered with 400 and this message."""


@dataclass(frozen=True, slots=True)
class OrdersQuery:
    since: str | None
    """`updated_since` in the store's normalised form."""
    limit: int
    after: SortKey | None


START: SortKey = ("", "", 0)
"""Before every served row: where a request without a cursor starts."""


def encode_cursor(key: SortKey, hop: int | None = None) -> str:
    """An opaque token for `key`; a `hop` makes another token for the same place (an empty page's)."""
    raw = json.dumps([*key, hop] if hop is not None else list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> SortKey:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as error:
        raise BadRequest("cursor is not a token this API issued") from error
    match value:
        case [str(updated_at), str(order_id), int(seq)] if not isinstance(seq, bool):
            return updated_at, order_id, seq
        case [str(updated_at), str(order_id), int(seq), int(hop)] if not isinstance(seq, bool) and hop >= 0:
            return updated_at, order_id, seq
    raise BadRequest("cursor is not a token this API issued")


def parse_orders_query(params: Mapping[str, list[str]]) -> OrdersQuery:
    """The query string of `GET /v1/orders`, checked as contract 1.1 says; raises BadRequest."""
    single: dict[str, str] = {}
    for name in ("updated_since", "limit", "cursor"):
        values = params.get(name, [])
        if len(values) > 1:
            raise BadRequest(f"{name} given more than once")
        if values and values[0] != "":
            single[name] = values[0]
    since = None
    if "updated_since" in single:
        parsed = parse_timestamp(single["updated_since"])
        if parsed is None:
            raise BadRequest("updated_since must be an ISO-8601 timestamp, e.g. 2024-03-01T00:00:00Z")
        since = iso_timestamp(parsed)
    limit = DEFAULT_LIMIT
    if "limit" in single:
        text = single["limit"]
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(text)
    after = decode_cursor(single["cursor"]) if "cursor" in single else None
    return OrdersQuery(since, limit, after)


def orders_page(store: ApiStore, query: OrdersQuery) -> bytes:
    """The 200 body. Stored bodies are JSON text already, so they are embedded as they are."""
    rows, more = store.page(query.since, query.limit, query.after)
    cursor = encode_cursor(rows[-1].key) if more else None
    return ('{"data":[' + ",".join(row.body for row in rows) + '],"next_cursor":' + json.dumps(cursor) + "}").encode()


def _error(status: int, message: str) -> bytes:
    return json.dumps({"error": {"status": status, "message": message}}).encode()


class _OrdersHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: ApiStore, token: str, faults: FaultPlan) -> None:
        super().__init__(address, _OrdersHandler)
        self.store = store
        self.token = token.encode()
        self.faults = faults
        self.requests_served = 0
        self.faults_from = 0  # the plan numbers the requests that came after this many
        self._lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):  # the client gave up (a timeout, a retry): not the server's fault
            logger.info("client went away: %s", type(error).__name__)
            return
        logger.exception("request failed")

    def next_request_number(self) -> tuple[int, FaultPlan]:
        """This request's number in the current plan, and the plan."""
        with self._lock:
            self.requests_served += 1
            return self.requests_served - self.faults_from, self.faults

    def change_plan(self, faults: FaultPlan) -> None:
        with self._lock:
            self.faults, self.faults_from = faults, self.requests_served


class _OrdersHandler(BaseHTTPRequestHandler):
    server: _OrdersHttpServer
    server_version = "simulated-shop-api/1"

    def do_GET(self) -> None:  # the name http.server dispatches to
        number, faults = self.server.next_request_number()
        fault = faults.fault_for(number)
        if fault == "drop":
            self.close_connection = True
            return
        if fault in _STATUS_FAULTS:
            headers = {"Retry-After": str(faults.retry_after_seconds)} if fault == "429" else {}
            retry = "try again" if fault not in FATAL_FAULTS else "do not retry"
            self._send(int(fault), _error(int(fault), f"injected fault, {retry}"), headers)
            return
        if fault == "not_json":
            self._send(200, NOT_JSON_BODY, {}, content_type="text/html")
            return
        if fault == "slow":
            time.sleep(faults.slow_seconds)
        status, body, headers = self._answer(empty_page_hop=number if fault == "empty_page" else None)
        if fault == "truncate_json" and status == 200:
            body = body[: len(body) // 2]
        self._send(status, body, headers, truncate=fault == "truncate")

    def _answer(self, empty_page_hop: int | None = None) -> tuple[int, bytes, dict[str, str]]:
        url = urlsplit(self.path)
        if url.path.rstrip("/") != ORDERS_PATH:
            return 404, _error(404, f"no such resource; the orders are at {ORDERS_PATH}"), {}
        if not self._authorised():
            message = "missing or invalid bearer token"
            return 401, _error(401, message), {"WWW-Authenticate": 'Bearer realm="shop_api"'}
        try:
            query = parse_orders_query(parse_qs(url.query, keep_blank_values=True))
        except BadRequest as error:
            return 400, _error(400, str(error)), {}
        if empty_page_hop is not None:
            cursor = encode_cursor(query.after or START, hop=empty_page_hop)
            return 200, ('{"data":[],"next_cursor":' + json.dumps(cursor) + "}").encode(), {}
        try:
            return 200, orders_page(self.server.store, query), {}
        except sqlite3.Error:
            logger.exception("reading api.db failed")
            return 503, _error(503, "order store unavailable, try again"), {"Retry-After": "1"}

    def _authorised(self) -> bool:
        scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self.server.token)

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str],
        truncate: bool = False,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        # A truncated answer promises the whole body and stops halfway, as a connection cut mid-transfer does.
        self.send_header("Content-Length", str(len(body) + (max(64, len(body)) if truncate else 0)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if truncate else body)
        if truncate:
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The default line repeats the request line; method and path are enough and carry nothing secret.
        logger.info("%s %s %s", self.command, urlsplit(self.path).path, int(code) if str(code).isdigit() else code)

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        logger.warning(format, *args)


class ApiServer:
    """The orders API on 127.0.0.1 in a background thread, for tests and local runs.

    >>> with ApiServer(root, token="secret", faults=FaultPlan(sequence=("429",))) as api:
    ...     requests.get(f"{api.base_url}/v1/orders", headers={"Authorization": "Bearer secret"})
    """

    def __init__(self, root: Path, token: str, faults: FaultPlan | None = None, port: int = 0) -> None:
        if not token:
            raise ValueError("token must not be empty")
        self._root = Path(root)
        self._token = token
        self._faults = faults or FaultPlan()
        self._port = port
        self._httpd: _OrdersHttpServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._httpd = _OrdersHttpServer(("127.0.0.1", self._port), ApiStore(self._root), self._token, self._faults)
        # A short poll interval makes `stop` (so every test's teardown) take milliseconds, not half a second.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="simulated-shop-api",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def faults(self) -> FaultPlan:
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        """Change the plan of a running server: its next request is the plan's request 1
        (`requests_served` goes on counting)."""
        self._faults = plan
        if self._httpd is not None:
            self._httpd.change_plan(plan)

    @property
    def requests_served(self) -> int:
        """Requests received so far, faulted ones included."""
        return 0 if self._httpd is None else self._httpd.requests_served


def serve_forever(root: Path, host: str, port: int, token: str, faults: FaultPlan | None = None) -> None:
    """Serve in the foreground until interrupted (for a CLI)."""
    if not token:
        raise ValueError("token must not be empty")
    with _OrdersHttpServer((host, port), ApiStore(Path(root)), token, faults or FaultPlan()) as httpd:
        logger.info("serving the orders API on http://%s:%d%s", host, httpd.server_address[1], ORDERS_PATH)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            logger.info("stopped")

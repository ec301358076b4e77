"""The orders API client: dlt's RESTClient on dlt's requests session, retrying what is transient with
exponential backoff and jitter (bounded in attempts and in time), failing what is fatal at once.

Transient, retried (contract 1.1 and what a proxy in between does): `429` (its `Retry-After` honoured,
up to the cap), any `5xx`, a dropped connection, a timeout, a body cut short of its `Content-Length`,
and a `200` whose body is not an orders page (an HTML page, JSON cut short with a consistent length, an
object without a `data` array). Fatal, not retried: any other `4xx`. Either way the run stops with one
line naming the source, the status and the setting to check; no line carries the token, a header or a
response body.
"""

from __future__ import annotations

import contextvars
import json
import queue
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import dlt
from dlt.sources.helpers.requests.retry import (
    DEFAULT_RETRY_EXCEPTIONS,
    DEFAULT_RETRY_STATUS,
    retry_if_predicate,
    retry_if_status,
)
from dlt.sources.helpers.requests.session import Session
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
from requests import HTTPError, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, Timeout
from tenacity import RetryCallState, Retrying, retry_any, retry_if_exception_type, stop_after_attempt, stop_before_delay

from loaders.sources.shop_api.settings import (
    MAX_EMPTY_PAGES_IN_A_ROW,
    ORDERS_PATH,
    REQUEST_BACKOFF_FACTOR,
    REQUEST_DEADLINE_SECONDS,
    REQUEST_MAX_ATTEMPTS,
    REQUEST_MAX_RETRY_DELAY_SECONDS,
    REQUEST_TIMEOUT_SECONDS,
)

SETTING = "SOURCES__SHOP_API__"
_PAGE_ATTRIBUTE = "_shop_api_page"


class ShopApiError(RuntimeError):
    """The orders API failed the run: fatal, or transient for longer than the retries allow. The message
    says which, never with the token."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one page is tried; see settings.py for what each bound means."""

    timeout: float = REQUEST_TIMEOUT_SECONDS
    max_attempts: int = REQUEST_MAX_ATTEMPTS
    backoff_factor: float = REQUEST_BACKOFF_FACTOR
    max_retry_delay: float = REQUEST_MAX_RETRY_DELAY_SECONDS
    deadline: float = REQUEST_DEADLINE_SECONDS

    @classmethod
    def configured(
        cls,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_attempts: int = REQUEST_MAX_ATTEMPTS,
        backoff_factor: float | None = None,
        max_retry_delay: float = REQUEST_MAX_RETRY_DELAY_SECONDS,
        deadline: float = REQUEST_DEADLINE_SECONDS,
    ) -> RetryPolicy:
        if backoff_factor is None:  # dlt's own runtime setting, as dlt's other HTTP clients use it
            backoff_factor = dlt.config.get("runtime.request_backoff_factor", float)
        return cls(
            timeout=float(timeout),
            max_attempts=max(1, int(max_attempts)),
            backoff_factor=float(REQUEST_BACKOFF_FACTOR if backoff_factor is None else backoff_factor),
            max_retry_delay=float(max_retry_delay),
            deadline=float(deadline),
        )

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: the server's `Retry-After` when it gives one, else the
        exponential backoff with jitter; never more than `max_retry_delay`."""
        response = _response_of(state)
        asked = _retry_after(response) if response is not None else None
        if asked is not None:
            return min(asked, self.max_retry_delay)
        backoff = min(self.backoff_factor * 2 ** (state.attempt_number - 1), self.max_retry_delay)
        return backoff * random.uniform(0.5, 1.0)

    def retrying(self, on_retry: Callable[[], None] = lambda: None) -> Retrying:
        """tenacity's retrying with this policy; `on_retry` is told of each retry (the load's tally)."""
        return Retrying(
            retry=retry_any(
                retry_if_status(DEFAULT_RETRY_STATUS),  # 429 and every 5xx
                retry_if_exception_type(DEFAULT_RETRY_EXCEPTIONS),  # dropped, timed out, cut short
                retry_if_predicate(_not_an_orders_page),
            ),
            wait=self.wait,
            # tenacity computes the wait before asking `stop`, so no retry starts whose wait ends past the deadline
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.deadline),
            retry_error_callback=self._give_up,
            before_sleep=lambda _state: on_retry(),
        )

    def _give_up(self, state: RetryCallState) -> Any:
        what = _describe_transient(state, self)
        raise ShopApiError(
            f"shop_api: GET {ORDERS_PATH} {what}, still failing after {state.attempt_number} attempts in"
            f" {state.seconds_since_start or 0:.0f}s (transient, retried with backoff; check {SETTING}BASE_URL"
            f" and the service, or raise {SETTING}REQUEST_MAX_ATTEMPTS / {SETTING}REQUEST_DEADLINE)"
        )


def make_session(policy: RetryPolicy, on_retry: Callable[[], None] = lambda: None) -> Session:
    """dlt's requests session (timeout on every request, no raise on status) whose `send` retries."""
    session = Session(timeout=policy.timeout, raise_for_status=False)
    adapter = HTTPAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.send = policy.retrying(on_retry).wraps(session.send)  # type: ignore[method-assign]
    return session


class OrdersPaginator(JSONResponseCursorPaginator):
    """Follows `next_cursor` through empty pages (only `null` ends the listing), but stops the run when
    the service loops: a cursor it already gave, or `max_empty_pages` empty pages in a row."""

    def __init__(self, max_empty_pages: int = MAX_EMPTY_PAGES_IN_A_ROW) -> None:
        super().__init__(cursor_path="next_cursor", cursor_param="cursor", stop_after_empty_page=False)
        self.max_empty_pages = max_empty_pages
        self._seen: set[str] = set()
        self._pages = 0
        self._empty_in_a_row = 0

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        # The body as `orders_page` read it (requests' own JSON reader refuses a `NaN` in one order).
        body = orders_page(response)
        self._next_reference = (body or {}).get("next_cursor") or None
        self._pages += 1
        self._empty_in_a_row = 0 if data else self._empty_in_a_row + 1
        cursor = self._next_reference
        if cursor is None:
            return
        if cursor in self._seen:
            raise ShopApiError(
                f"shop_api: GET {ORDERS_PATH} gave a next_cursor it had already given, after {self._pages}"
                f" pages: the service is looping (fatal, not retried; check {SETTING}BASE_URL and the service)"
            )
        if self._empty_in_a_row > self.max_empty_pages:
            raise ShopApiError(
                f"shop_api: GET {ORDERS_PATH} answered {self._empty_in_a_row} empty pages in a row, each with a"
                f" next_cursor (stopped, not retried; check the service, or raise {SETTING}MAX_EMPTY_PAGES)"
            )
        self._seen.add(cursor)


class OrdersClient(RESTClient):
    """dlt's REST client reading each page's orders from the body as `orders_page` parsed it."""

    def extract_response(self, response: Response, data_selector: Any) -> list[Any]:
        body = orders_page(response)
        if body is None:  # the retry gives up before this; a guard, not a path
            raise ShopApiError(f"shop_api: GET {ORDERS_PATH} answered a body that is not an orders page")
        return list(body["data"])


def make_client(
    base_url: str, token: str, policy: RetryPolicy, max_empty_pages: int, on_retry: Callable[[], None] = lambda: None
) -> RESTClient:
    return OrdersClient(
        base_url=base_url.rstrip("/"),
        auth=BearerTokenAuth(token),
        paginator=OrdersPaginator(max_empty_pages),
        data_selector="data",
        session=make_session(policy, on_retry),
    )


def format_since(moment: datetime) -> str:
    """`updated_since` is inclusive, so flooring to the second never skips a version."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_pages(client: RESTClient, since: datetime | None, page_size: int) -> Iterator[list[Any]]:
    """Each page's orders, parsed with exact decimals so '19.90' and 19.90 keep their digits."""
    params: dict[str, Any] = {"limit": page_size}
    if since is not None:
        params["updated_since"] = format_since(since)
    try:
        for page in client.paginate(ORDERS_PATH, params=params):
            yield list(page)
    except HTTPError as exc:
        raise ShopApiError(describe_http_error(exc.response)) from None


READ_AHEAD_PAGES = 2


def read_ahead(pages: Iterator[list[Any]], depth: int = READ_AHEAD_PAGES) -> Iterator[list[Any]]:
    """The pages, fetched by a thread of their own up to `depth` pages ahead of the caller, so that the
    wait for the server's next page overlaps landing this one. The thread runs in a copy of the
    caller's context (the run id its log events carry); whatever it raises is raised here, at the page
    where it happened; when the caller stops early (a backfill window's end, an error downstream) the
    thread stops after the request in flight."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stopped.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not put(("page", page)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the caller, raised there
            put(("error", exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(fetch,), name="shop_api-read-ahead")
    thread.daemon = True
    thread.start()
    try:
        while True:
            what, item = handoff.get()
            if what == "end":
                return
            if what == "error":
                raise item
            yield item
    finally:
        stopped.set()
        thread.join()


def orders_page(response: Response) -> dict[str, Any] | None:
    """The body as `{"data": [...], "next_cursor": str | null}`, or None when it is not one. Parsed once
    per response and kept on it: decimals exact, and the non-standard `NaN`/`Infinity` kept as the text
    they are (landed as text anyway), so that no JSON written from them again is invalid."""
    if hasattr(response, _PAGE_ATTRIBUTE):
        return getattr(response, _PAGE_ATTRIBUTE)
    try:
        body = json.loads(response.content, parse_float=Decimal, parse_constant=str)
    except ValueError:  # not JSON, not UTF-8, cut short
        body = None
    if not (
        isinstance(body, dict)
        and isinstance(body.get("data"), list)
        and isinstance(body.get("next_cursor"), (str, type(None)))
    ):
        body = None
    setattr(response, _PAGE_ATTRIBUTE, body)
    return body


def _not_an_orders_page(response: Response | None, exception: BaseException | None) -> bool:
    return response is not None and response.status_code == 200 and orders_page(response) is None


def _response_of(state: RetryCallState) -> Response | None:
    if state.outcome is None:
        return None
    error = state.outcome.exception()
    if error is not None:
        return getattr(error, "response", None) if isinstance(error, HTTPError) else None
    result = state.outcome.result()
    return result if isinstance(result, Response) else None


def _retry_after(response: Response) -> float | None:
    """`Retry-After` in seconds (the delta form; the date form is rare and then backoff applies)."""
    value = (response.headers.get("Retry-After") or "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


def _describe_transient(state: RetryCallState, policy: RetryPolicy) -> str:
    error = state.outcome.exception() if state.outcome is not None else None
    response = _response_of(state)
    if response is not None and response.status_code != 200:
        return f"answered {response.status_code} {response.reason}"
    if response is not None:
        return "answered 200 with a body that is not an orders page (not JSON, or cut short)"
    if isinstance(error, Timeout):
        return f"timed out after {policy.timeout:g}s ({SETTING}REQUEST_TIMEOUT)"
    if isinstance(error, ChunkedEncodingError):
        return "sent a body cut short of its length"
    if isinstance(error, ConnectionError):
        return "dropped the connection or could not be reached"
    return f"failed ({type(error).__name__})"


def describe_http_error(response: Any) -> str:
    """One clear line for a fatal answer; built from the status alone so no header, token or body is echoed."""
    status = response.status_code
    if status in (401, 403):
        check = f"{SETTING}TOKEN"
    elif status == 400:
        check = f"{SETTING}PAGE_SIZE (1..1000) and {SETTING}BASE_URL"
    else:
        check = f"{SETTING}BASE_URL"
    return f"shop_api: GET {ORDERS_PATH} answered {status} {response.reason} (fatal, not retried; check {check})"

"""`elt report`, on both warehouses: one static HTML page that headless Chromium (Debian's `chromium`, which
`make test` installs) opens from file:// and draws — runs over time with the ledger's numbers (rows landed
and dead-lettered, quarantine rows opened and resolved, duration) and, under the run that failed (a token
the API refuses), the ledger's error; the books of the last run that kept them, each total = its parts and
the difference; the open dead letters, per source and one by one (the oldest, bounded, saying how many
more), as `elt dead-letters --json` lists them; the open quarantine by table and reason code, each source's
freshness — with no external URL, and in a 1,400 x 900 window nothing scrolls sideways (not the page, not
a table). The expected numbers are read here from the ledger, the warehouse and `elt dead-letters`, not
from the page's own data. While a writer holds the DuckDB file the page is still written and says the
warehouse is busy; on PostgreSQL it reads the ledger under a run's lock.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections import defaultdict
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from loaders.core.outcomes import ExitCode
from loaders.core.registry import ENTITIES, SOURCE_NAMES
from loaders.ops.report import gather, render
from loaders.simulate import SimulationConfig, generate
from loaders.warehouse.locks import run_lock
from tests.support.cli import duckdb_file_held, elt
from tests.support.project import Project

pytestmark = pytest.mark.warehouses("postgres")

WORLD = SimulationConfig(
    seed=31, customers=25, orders_per_day=40, invalid_rate=0.15, damaged_rate=0.05, late_dimension_rate=0.2
)
WINDOW = (1400, 900)  # the engineer on call's window: nothing may scroll sideways in it


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent, self.text = tag, attrs, parent, ""

    def within(self, element_id: str) -> bool:
        node: Element | None = self
        while node is not None:
            if node.attrs.get("id") == element_id:
                return True
            node = node.parent
        return False


class Dom(HTMLParser):
    """The elements of Chromium's rendered DOM, each with its attributes, text and parent."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self.open: list[Element] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs}, self.open[-1] if self.open else None)
        self.elements.append(element)
        if tag not in ("meta", "br", "img", "input", "link"):
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        for element in self.open:
            element.text += data

    def find(self, tag: str, **attrs: str) -> list[Element]:
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return [e for e in self.elements if e.tag == tag and all(e.attrs.get(k) == v for k, v in wanted.items())]

    def bars(self, chart: str) -> dict[tuple[str, str], float]:
        """(category, series) -> value of the chart's bars, checking each bar's printed label says the same."""
        labels = {
            (e.attrs["data-category"], e.attrs["data-series"]): e.text for e in self.find("text", data_chart=chart)
        }
        found = {}
        for bar in self.find("rect", data_chart=chart):
            key = (bar.attrs["data-category"], bar.attrs["data-series"])
            found[key] = float(bar.attrs["data-value"])
            assert float(labels[key]) == found[key], (chart, key, labels[key])
        return found

    def table(self, table_id: str) -> list[dict[str, str]]:
        """The table's body rows in order, each column -> text (a run's error row has only `error`)."""
        rows: dict[int, dict[str, str]] = defaultdict(dict)
        for cell in self.find("td"):
            if cell.within(table_id):
                rows[id(cell.parent)][cell.attrs["data-column"]] = cell.text
        return list(rows.values())

    def text(self, tag: str, element_id: str) -> str:
        (element,) = self.find(tag, id=element_id)
        return element.text


# Run after the page's own script (it is appended after it): what scrolls sideways in the window, measured
# by the browser's layout, written into the DOM for the dump.
PROBE = """<script>
const wrappers = [...document.querySelectorAll("div.scroll")].map(w => ({
  table: w.querySelector("table").id, scroll: w.scrollWidth, client: w.clientWidth}));
const root = document.documentElement;
document.body.append(Object.assign(document.createElement("pre"), {id: "probe", textContent: JSON.stringify({
  width: window.innerWidth, page: {scroll: root.scrollWidth, client: root.clientWidth},
  tables: wrappers})}));
</script>
</body>"""


def rendered(page: Path, tmp_path: Path) -> Dom:
    """The page as headless Chromium leaves it after its scripts ran, opened from file:// in a 1400x900 window."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make browser` installs it"
    shown = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",  # the page's console, where a script error would show
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0 and "</html>" in shown.stdout, shown.stderr[-2000:]
    assert "Uncaught" not in shown.stderr, shown.stderr[-2000:]
    return Dom(shown.stdout)


def widths(page: Path, tmp_path: Path) -> dict[str, Any]:
    """The page's and each table's scroll and client widths in the window, as the browser laid them out
    (a copy of the page with PROBE after its script)."""
    probed = page.with_name("probed.html")
    markup = page.read_text()
    assert markup.count("</body>") == 1
    probed.write_text(markup.replace("</body>", PROBE))
    measured: dict[str, Any] = json.loads(rendered(probed, tmp_path).text("pre", "probe"))
    return measured


def assert_fits_the_window(page: Path, tmp_path: Path) -> None:
    """No horizontal scroll at 1400x900: not the page's, not any table's."""
    measured = widths(page, tmp_path)
    assert measured["width"] == WINDOW[0], measured  # the window is as wide as asked (its height holds chrome)
    assert measured["page"]["scroll"] <= measured["page"]["client"] <= WINDOW[0], measured
    tables = {wrapper["table"]: wrapper for wrapper in measured["tables"]}
    assert {"runs-table", "books-table", "dead-letters-table", "freshness-table"} <= set(tables), tables
    wide = [wrapper for wrapper in measured["tables"] if wrapper["scroll"] > wrapper["client"]]
    assert not wide, f"scrolls sideways at {WINDOW}: {wide}"


def write_report(tmp_path: Path) -> tuple[Path, str]:
    """`elt report --output PAGE`, as a user runs it: the page and the line it printed."""
    page = tmp_path / "report" / "elt_report.html"
    done = elt("report", "--output", str(page), "--runs", "50")
    assert done.returncode == 0, done.stderr[-3000:]
    return page, done.stdout


def assert_self_contained(page: Path) -> None:
    """Nothing to fetch (no src, href, url() or import) and no chart in the file: the browser draws them."""
    markup = page.read_text()
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", markup)
    assert set(re.findall(r"https?://[^\s\"'<>]+", markup)) == {"http://www.w3.org/2000/svg"}  # a namespace
    assert "<rect" not in markup and "<svg" not in markup


def open_quarantine_by_reason(project: Project) -> dict[str, float]:
    expected: dict[str, float] = defaultdict(float)
    for entity in ENTITIES:
        open_rows = project.query(f"select failed_rules from quarantine.{entity.name} where not is_resolved")
        for (failed_rules,) in open_rows:
            for reason in failed_rules.split(","):
                expected[f"quarantine.{entity.name} · {reason}"] += 1
    return dict(expected)


def open_dead_letters() -> dict[str, Any]:
    """`elt dead-letters --json`, as the engineer runs it, its open dead letters the oldest first."""
    listed = elt("dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    document: dict[str, Any] = json.loads(listed.stdout)
    document["dead_letters"].sort(
        key=lambda letter: (datetime.fromisoformat(letter["dead_lettered_at"]), letter["dead_letter_id"])
    )
    assert len(document["dead_letters"]) == sum(document["open"].values())
    return document


def test_report_shows_runs_their_errors_books_dead_letters_quarantine_and_freshness(
    project: Project, tmp_path: Path
) -> None:
    for day in (1, 2, 3):
        generate(project.root, WORLD, through_day=day)
        if day == 3:  # first with a token the API refuses: shop_api fails, the others load, dbt builds
            refused = elt("run", env={"SOURCES__SHOP_API__TOKEN": "not-the-token"})
            assert refused.returncode == ExitCode.LOAD_FAILED, refused.stdout[-3000:] + refused.stderr[-3000:]
        code, line = project.elt_run()
        assert code == ExitCode.OK, line

    page, printed = write_report(tmp_path)
    assert printed == f"elt report: wrote {page} (4 runs)\n"
    assert_self_contained(page)
    dom = rendered(page, tmp_path)

    # runs over time, oldest first, with the ledger's numbers
    runs = project.query(
        "select run_id, quarantine_opened, quarantine_resolved, finished_at, started_at"
        " from ops.elt_runs order by started_at"
    )
    run_ids = [run[0] for run in runs]
    loaded = {
        run_id: (float(landed), float(dead))
        for run_id, landed, dead in project.query(
            "select run_id, sum(landed), sum(dead_lettered) from ops.elt_run_sources group by run_id"
        )
    }
    assert dom.bars("chart-rows") == {
        **{(run_id, "landed"): loaded[run_id][0] for run_id in run_ids},
        **{(run_id, "dead_lettered"): loaded[run_id][1] for run_id in run_ids},
    }
    assert [bar.attrs["data-category"] for bar in dom.find("rect", data_chart="chart-rows", data_series="landed")] == (
        run_ids
    )
    assert dom.bars("chart-quarantine-flow") == {
        **{(run_id, "quarantine_opened"): float(opened) for run_id, opened, *_ in runs},
        **{(run_id, "quarantine_resolved"): float(resolved) for run_id, _, resolved, *_ in runs},
    }
    started = {row["run_id"]: row["started_at"] for row in dom.table("runs-table") if "run_id" in row}
    assert started == {run_id: at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for run_id, *_, at in runs}
    durations = dom.bars("chart-duration")
    for run_id, _, _, finished_at, started_at in runs:
        took = (finished_at - started_at).total_seconds()
        assert abs(durations[(run_id, "duration_seconds")] - took) <= 0.05 + 1e-9, (run_id, took)
    # the comparisons above prove something only if the world dead-letters, quarantines and resolves
    assert sum(dead for _, dead in loaded.values()) > 0
    assert sum(run[1] for run in runs) > 0 and sum(run[2] for run in runs) > 0

    # the failed run's error, from the ledger, in a row right under that run's; no other run has one
    ledger = project.query("select run_id, status, exit_code, error from ops.elt_runs order by started_at")
    assert [(status, exit_code) for _, status, exit_code, _ in ledger] == [
        ("ok", 0),
        ("ok", 0),
        ("failed", ExitCode.LOAD_FAILED),
        ("ok", 0),
    ]
    failed_id, _, _, error = ledger[2]
    assert error.startswith("shop_api: ") and "401" in error, error
    rows = [
        (tr.attrs.get("class", ""), tr.attrs["data-run-id"])
        for tr in dom.find("tr")
        if tr.within("runs-table") and "data-run-id" in tr.attrs
    ]
    expected_rows: list[tuple[str, str]] = []
    for run_id in run_ids:
        if run_id == failed_id:
            expected_rows += [("has-details", run_id), ("run-error", run_id)]
        else:
            expected_rows.append(("", run_id))
    assert rows == expected_rows
    table = dom.table("runs-table")
    assert [row for row in table if "run_id" not in row] == [{"error": error}]
    assert {row["run_id"]: row["status"] for row in table if "run_id" in row}[failed_id] == "failed"
    assert dom.text("p", "runs-summary").startswith("4 runs: 3 ok, 1 failed.")

    # the books of the last run that kept them (the last run), each total = its parts and the difference
    books = project.query(
        "select book, total_name, total, parts, difference from ops.elt_run_books"
        f" where run_id = '{run_ids[-1]}' order by book"
    )
    newest_books = project.scalar(
        "select run_id from ops.elt_runs where run_id in (select run_id from ops.elt_run_books)"
        " order by started_at desc limit 1"
    )
    assert newest_books == run_ids[-1]
    assert {f"{source} records" for source in SOURCE_NAMES} | {f"{e.name} versions" for e in ENTITIES} == {
        book for book, *_ in books
    }
    assert dom.table("books-table") == [
        {
            "book": book,
            "total": f"{total_name} {total}",
            "parts": " + ".join(f"{name} {count}" for name, count in json.loads(parts).items()),
            "difference": str(difference),
        }
        for book, total_name, total, parts, difference in books
    ]
    assert sum(total for _, _, total, _, _ in books) > 0
    books_run = dom.text("p", "books-run")
    assert (
        books_run
        == f"Run {run_ids[-1]} (run, started {started[run_ids[-1]]} UTC, ok, #4 above): all {len(books)} books balance."
    )

    # the open dead letters, per source and one by one (the oldest first), as `elt dead-letters` lists them
    document = open_dead_letters()
    letters = document["dead_letters"]
    assert 2 < len(letters) <= 50 and {"shop_api", "payments_files"} <= {letter["source"] for letter in letters}
    per_source = {row["source"]: int(row["open"]) for row in dom.table("dead-letters-per-source")}
    assert (
        per_source
        == document["open"]
        == {source: sum(letter["source"] == source for letter in letters) for source in SOURCE_NAMES}
    )
    assert dom.text("p", "dead-letters-shown") == f"All {len(letters)} open dead letters, the oldest first."
    columns = ("source", "resource", "location", "error", "dead_letter_id")
    listed = dom.table("dead-letters-table")
    assert [{column: row[column] for column in columns} for row in listed] == [
        {column: letter[column] for column in columns} for letter in letters
    ]
    for row, letter in zip(listed, letters, strict=True):
        assert abs(float(row["age_hours"]) - letter["age_hours"]) <= 0.05, (row, letter)

    # open quarantine by table and reason code, as the quarantine tables hold it now
    expected = open_quarantine_by_reason(project)
    assert expected
    assert dom.bars("chart-open-quarantine") == {(category, "open"): count for category, count in expected.items()}

    # freshness per source: the last completed dlt load of each, and its verdict
    freshness = {row["source"]: row for row in dom.table("freshness-table")}
    assert set(freshness) == set(SOURCE_NAMES)
    for source in SOURCE_NAMES:
        newest = project.scalar(f"select max(load_id) from raw_{source}._dlt_loads where status = 0")
        last_load_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(newest)))
        assert freshness[source]["last_load_at"] == last_load_at, freshness[source]
        assert freshness[source]["freshness"] == "pass" and float(freshness[source]["age_hours"]) < 1
    assert {category for category, _ in dom.bars("chart-freshness")} == set(SOURCE_NAMES)
    assert not dom.find("p", id="warehouse-busy")

    # nothing scrolls sideways in a 1400x900 window (the error, the paths and the cursors wrap)
    assert_fits_the_window(page, tmp_path)

    # the list of open dead letters is bounded: the oldest ones, and how many more are open
    bounded = tmp_path / "bounded" / "elt_report.html"
    bounded.parent.mkdir()
    bounded.write_text(render(gather(project.settings, list(SOURCE_NAMES), 50, dead_letters_shown=2)))
    few = rendered(bounded, tmp_path)
    assert [row["dead_letter_id"] for row in few.table("dead-letters-table")] == [
        letter["dead_letter_id"] for letter in letters[:2]
    ]
    assert few.text("p", "dead-letters-shown") == (
        f"The 2 oldest of {len(letters)} open dead letters; {len(letters) - 2} more open, not listed here"
        " (`elt dead-letters` lists every one)."
    )
    assert {row["source"]: int(row["open"]) for row in few.table("dead-letters-per-source")} == document["open"]


def test_report_is_written_while_a_writer_holds_the_warehouse(project: Project, tmp_path: Path) -> None:
    generate(project.root, WORLD, through_day=1)
    code, line = project.elt_run()
    assert code == ExitCode.OK, line
    settings = project.settings
    if settings.target == "postgres":  # the ledger answers under a run's lock
        with run_lock(settings):
            page, printed = write_report(tmp_path)
        assert printed.endswith("(1 runs)\n"), printed
        dom = rendered(page, tmp_path)
        assert not dom.find("p", id="warehouse-busy") and len(dom.bars("chart-rows")) == 2
        assert len(dom.table("books-table")) == project.scalar("select count(*) from ops.elt_run_books") > 0
        assert sum(int(row["open"]) for row in dom.table("dead-letters-per-source")) == len(
            dom.table("dead-letters-table")
        )
        return
    with duckdb_file_held(settings.duckdb_path):
        page, printed = write_report(tmp_path)
    assert printed == f"elt report: wrote {page} (0 runs)\n"
    dom = rendered(page, tmp_path)
    (busy,) = dom.find("p", id="warehouse-busy")
    assert "busy: the DuckDB file is in use by another process" in busy.text
    assert {row["source"] for row in dom.table("freshness-table")} == set(SOURCE_NAMES)
    assert not dom.find("rect")  # nothing read, nothing charted: no run, no open row, no load's age
    assert "Not read: the warehouse is busy." in dom.text("div", "books")  # nothing claimed of what is unknown
    assert dom.text("p", "dead-letters-unread") == "Not read: the warehouse is busy."
    assert not dom.find("table", id="books-table") and not dom.find("table", id="dead-letters-table")

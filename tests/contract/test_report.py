"""`elt report`, on both warehouses: one static HTML page that headless Chromium (Debian's `chromium`, which
`make test` installs) opens from file:// and draws — runs over time with the ledger's numbers (rows landed
and dead-lettered, quarantine rows opened and resolved, duration), the open quarantine by table and reason
code, each source's freshness — with no external URL. The expected numbers are read here from the ledger and
the warehouse, not from the page's own data. While a writer holds the DuckDB file the page is still written
and says the warehouse is busy; on PostgreSQL it reads the ledger under a run's lock.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import defaultdict
from datetime import UTC
from html.parser import HTMLParser
from pathlib import Path

from loaders.core.outcomes import ExitCode
from loaders.core.registry import ENTITIES, SOURCE_NAMES
from loaders.simulate import SimulationConfig, generate
from loaders.warehouse.locks import run_lock
from tests.support.cli import duckdb_file_held, elt
from tests.support.project import Project

WORLD = SimulationConfig(
    seed=31, customers=25, orders_per_day=40, invalid_rate=0.15, damaged_rate=0.05, late_dimension_rate=0.2
)


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
        rows: dict[int, dict[str, str]] = defaultdict(dict)
        for cell in self.find("td"):
            if cell.within(table_id):
                rows[id(cell.parent)][cell.attrs["data-column"]] = cell.text
        return list(rows.values())


def rendered(page: Path, tmp_path: Path) -> Dom:
    """The page as headless Chromium leaves it after its scripts ran, opened from file://."""
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


def test_report_charts_the_ledgers_runs_open_quarantine_and_freshness(project: Project, tmp_path: Path) -> None:
    for day in (1, 2, 3):
        generate(project.root, WORLD, through_day=day)
        code, line = project.elt_run()
        assert code == ExitCode.OK, line

    page, printed = write_report(tmp_path)
    assert printed == f"elt report: wrote {page} (3 runs)\n"
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
    started = {row["run_id"]: row["started_at"] for row in dom.table("runs-table")}
    assert started == {run_id: at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for run_id, *_, at in runs}
    durations = dom.bars("chart-duration")
    for run_id, _, _, finished_at, started_at in runs:
        took = (finished_at - started_at).total_seconds()
        assert abs(durations[(run_id, "duration_seconds")] - took) <= 0.05 + 1e-9, (run_id, took)
    # the comparisons above prove something only if the world dead-letters, quarantines and resolves
    assert sum(dead for _, dead in loaded.values()) > 0
    assert sum(run[1] for run in runs) > 0 and sum(run[2] for run in runs) > 0

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
        return
    with duckdb_file_held(settings.duckdb_path):
        page, printed = write_report(tmp_path)
    assert printed == f"elt report: wrote {page} (0 runs)\n"
    dom = rendered(page, tmp_path)
    (busy,) = dom.find("p", id="warehouse-busy")
    assert "busy: the DuckDB file is in use by another process" in busy.text
    assert {row["source"] for row in dom.table("freshness-table")} == set(SOURCE_NAMES)
    assert not dom.find("rect")  # nothing read, nothing charted: no run, no open row, no load's age

"""`elt report`: one static HTML page of what the ELT has been doing, to open from disk or attach to a ticket.

Runs over time (rows landed and dead-lettered, quarantine rows opened and resolved, duration) and each run
in a table, with the ledger's error under every run that did not finish ok; the books of the last run that
kept them (each total = its parts, and the difference); the open dead letters (per source, and the oldest
of them one by one); the open quarantine by table and reason code, and each source's freshness. No server:
the page is self-contained (inline CSS, SVG drawn by an inline script, no external URL), its data embedded
as one JSON document, so it works from file:// and shows the same numbers wherever it is opened. It fits a
1,400 px wide window: long cells wrap, nothing but a chart of many runs scrolls sideways.

What `elt status` collects is reused as it is (`status.collect`, books included); the only extra reads are
the ledger's per-source rows summed per run, which run kept the books, and the open dead letters
(`read_dead_letters`, as `elt dead-letters` lists them). On DuckDB while a run holds the file the page is
still written, and says the warehouse is busy above what could be known without it (each source's cursor
and pending packages).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loaders.core.outcomes import ExitCode, RunLocked
from loaders.core.registry import SOURCE_NAMES
from loaders.core.settings import Settings
from loaders.core.timestamps import as_utc, iso
from loaders.ops.dead_letters import DeadLetter, read_dead_letters
from loaders.ops.runner import Result
from loaders.ops.status import collect, freshness_limits
from loaders.warehouse import dialect
from loaders.warehouse.base import Dialect
from loaders.warehouse.ops_tables import RUN_BOOKS, RUN_SOURCES, RUNS

# The open dead letters listed one by one, the oldest first; the page says how many more are open
# (`elt dead-letters` lists every one).
DEAD_LETTERS_SHOWN = 50


def report(settings: Settings, output: Path, runs: int) -> Result:
    """Write one static HTML page: runs over time (and why the failed ones failed), the last books, the open
    dead letters, open quarantine by table and reason, freshness per source."""
    data = gather(settings, list(SOURCE_NAMES), runs)
    path = output.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
    return Result(ExitCode.OK, f"elt report: wrote {path} ({len(data['runs'])} runs)")


@dataclass
class Extra:
    """What the page reads besides `status.collect`; left empty (unknown) when the warehouse is not read."""

    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    books_run: dict[str, Any] | None = None
    dead_letters: dict[str, Any] | None = None
    unread: str | None = None  # why the dead letters are not known


def gather(
    settings: Settings, sources: list[str], runs: int, dead_letters_shown: int = DEAD_LETTERS_SHOWN
) -> dict[str, Any]:
    """Everything the page shows, JSON-ready: runs oldest first, each with its sources' rows summed."""
    status = collect(settings, sources, limit=runs)
    now = datetime.now(UTC)
    run_ids = [run["run_id"] for run in status.runs]
    extra = read_extra(settings, run_ids, sources, dead_letters_shown, now) if status.warehouse == "ok" else Extra()
    empty = {"extracted": None, "landed": None, "dead_lettered": None}
    return {
        "target": settings.target,
        "generated_at": iso(now),
        "warehouse": status.warehouse,
        "runs": [
            {
                "run_id": run["run_id"],
                "command": run["command"],
                "started_at": iso_or_none(run["started_at"]),
                "finished_at": iso_or_none(run["finished_at"]),
                "status": run["status"],
                "exit_code": run["exit_code"],
                "error": run["error"],
                "duration_seconds": (
                    round((run["finished_at"] - run["started_at"]).total_seconds(), 1) if run["finished_at"] else None
                ),
                **extra.totals.get(run["run_id"], empty),
                "quarantine_opened": run["quarantine_opened"],
                "quarantine_resolved": run["quarantine_resolved"],
            }
            for run in reversed(status.runs)  # status lists the newest first; a chart over time reads left to right
        ],
        # the parts in the ledger's order, as `elt status` prints them (the page's JSON sorts object keys)
        "books": {
            "run": extra.books_run,
            "books": [{**book, "parts": list(book["parts"].items())} for book in status.books],
        },
        "dead_letters": extra.dead_letters,
        "dead_letters_unread": extra.unread,
        "quarantine": status.quarantine,
        "sources": [
            {
                "source": source.source,
                "last_load_at": source.last_load_at,
                "age_hours": source.age_hours,
                "freshness": source.freshness,
                **freshness_limits(settings, source.source),
                "pending_packages": source.pending_packages,
                "dead_letters_last_run": source.dead_letters_last_run,
                "dead_letters_open": source.dead_letters_open,
                "cursor": source.cursor,
            }
            for source in status.sources
        ],
    }


def read_extra(settings: Settings, run_ids: list[str], sources: list[str], shown: int, now: datetime) -> Extra:
    """The reads `status.collect` does not do, on one connection. The runs came from the ledger, so its tables
    exist; nothing is known when a run took the DuckDB file since `status.collect` read it."""
    warehouse = dialect(settings)
    extra = Extra()
    try:
        with warehouse.connect() as conn:
            extra.totals = run_totals(warehouse, conn, run_ids)
            extra.books_run = books_run(conn)
            try:
                extra.dead_letters = open_dead_letters(warehouse, conn, sources, shown, now)
            except Exception as exc:  # a raw table half there, as `elt status` allows: the rest of the page stands
                extra.unread = f"not read: {type(exc).__name__}: {exc}"
    except RunLocked as exc:
        extra.unread = f"not read: busy: {exc}"
    return extra


def run_totals(warehouse: Dialect, conn: Any, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """run id -> rows extracted, landed and dead-lettered, summed over the sources it loaded (a run that
    loaded nothing, `elt build`, has no entry)."""
    if not run_ids:
        return {}
    cursor = conn.cursor()
    cursor.execute(
        f"select run_id, sum(extracted), sum(landed), sum(dead_lettered) from {RUN_SOURCES.qualified}"
        f" where run_id in ({warehouse.placeholders(len(run_ids))}) group by run_id",
        run_ids,
    )
    return {
        run_id: {"extracted": int(extracted), "landed": int(landed), "dead_lettered": int(dead)}
        for run_id, extracted, landed, dead in cursor.fetchall()
    }


def books_run(conn: Any) -> dict[str, Any] | None:
    """The last run that kept books (the one whose books `status.collect` read), or None (none did, or the
    books table is not there yet)."""
    cursor = conn.cursor()
    try:
        cursor.execute(
            f"select run_id, command, started_at, status from {RUNS.qualified}"
            f" where run_id in (select run_id from {RUN_BOOKS.qualified}) order by started_at desc limit 1"
        )
        found = cursor.fetchall()
    except Exception:  # the harness's connections autocommit: a failed read leaves no transaction to undo
        return None
    return (
        {"run_id": found[0][0], "command": found[0][1], "started_at": iso(found[0][2]), "status": found[0][3]}
        if found
        else None
    )


def open_dead_letters(warehouse: Dialect, conn: Any, sources: list[str], shown: int, now: datetime) -> dict[str, Any]:
    """Per source the open dead letters' count, and the `shown` oldest of them (of every source) one by one."""
    found = read_dead_letters(warehouse, conn, sources)
    letters = sorted(
        (letter for source in sources for letter in found[source]),
        key=lambda letter: (as_utc(letter.dead_lettered_at), letter.dead_letter_id),
    )
    return {
        "open": {source: len(found[source]) for source in sources},
        "total": len(letters),
        "more": max(0, len(letters) - shown),
        "shown": [dead_letter_row(letter, now) for letter in letters[:shown]],
    }


def dead_letter_row(letter: DeadLetter, now: datetime) -> dict[str, Any]:
    return {
        "source": letter.source,
        "resource": letter.resource,
        "location": letter.location,
        "error": letter.error,
        "dead_lettered_at": iso(letter.dead_lettered_at),
        "age_hours": letter.age_hours(now),
        "dead_letter_id": letter.dead_letter_id,
    }


def iso_or_none(value: datetime | None) -> str | None:
    """A ledger timestamp as UTC text."""
    return None if value is None else iso(value)


def render(data: dict[str, Any]) -> str:
    """The page: the template with the data embedded as JSON (`<` escaped so no value can close the script)."""
    embedded = json.dumps(data, default=str, sort_keys=True).replace("<", "\\u003c")
    title = html.escape(f"ELT report ({data['target']}, {data['generated_at']})")
    return PAGE.replace("{{title}}", title).replace("{{data}}", embedded)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.5rem; margin-bottom: .2rem; }
  h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
  h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
  .meta { color: #666; }
  .busy { background: #fff4d6; border: 1px solid #e0b040; padding: .6rem .8rem; border-radius: 4px; }
  .empty { color: #777; font-style: italic; }
  .chart { overflow-x: auto; }
  .chart svg { display: block; }
  .chart text { font-size: 11px; fill: #333; }
  .chart .axis { stroke: #999; }
  .scroll { overflow-x: auto; }
  .legend span { display: inline-block; margin-right: 1rem; }
  .legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -1px; }
  /* Tables fit the page: text wraps between words, long text (errors, paths, JSON) anywhere; numbers, instants
     and ids do not wrap. */
  table { border-collapse: collapse; margin-top: .5rem; font-size: 13px; max-width: 100%; }
  th, td { text-align: left; vertical-align: top; padding: .25rem .5rem; border-bottom: 1px solid #eee; }
  th { vertical-align: bottom; }
  td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.instant { white-space: nowrap; }
  td.id, td.code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
  td.id { white-space: nowrap; }
  td.long, td.code { overflow-wrap: anywhere; }
  tr.has-details td { border-bottom: none; }
  td.error-text { white-space: pre-wrap; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace;
                  overflow-wrap: anywhere; color: #8c1d16; background: #fdf1f0; padding: .3rem .6rem .4rem 2rem; }
  td.error-text::before { content: "error: "; font-weight: 600; }
  .pass { color: #1b7f3b; } .warn { color: #b26b00; } .error, .failed, .interrupted { color: #b3261e; }
  .unknown, .running, .abandoned { color: #777; }
  .chart text.not-ok { fill: #b3261e; font-weight: 600; }
</style>
</head>
<body>
<h1>ELT report</h1>
<p class="meta" id="meta"></p>
<div id="warehouse"></div>
<h2>Runs over time</h2>
<div id="runs"></div>
<h2>Books of the last run that kept them</h2>
<div id="books"></div>
<h2>Open dead letters</h2>
<div id="dead-letters"></div>
<h2>Open quarantine by table and reason code</h2>
<div id="quarantine"></div>
<h2>Freshness per source</h2>
<div id="freshness"></div>
<noscript><p class="busy">The charts are drawn by the page's script: allow JavaScript for this file.</p></noscript>
<script type="application/json" id="report-data">{{data}}</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("report-data").textContent);
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = {landed: "#3b73b9", dead_lettered: "#c0392b", quarantine_opened: "#d98b1f",
                quarantine_resolved: "#2e8b57", duration_seconds: "#6c5fa7", open: "#d98b1f", age_hours: "#3b73b9"};
const VERDICT_COLORS = {pass: "#2e8b57", warn: "#d98b1f", error: "#c0392b", unknown: "#999"};

function node(tag, attributes, text) {
  const element = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function shown(value) {
  if (value === null || value === undefined) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

// Grouped vertical bars: one group per category (a run), one bar per series. Each bar carries its chart,
// series, category and value as data attributes, and its value is written above it; a marked category
// (a run that did not finish ok) has its number in red.
function columnChart(chartId, title, categories, labels, series, marked) {
  const figure = node("figure", {class: "chart", id: chartId});
  figure.append(node("h3", {}, title));
  const legend = node("div", {class: "legend"});
  for (const s of series) {
    const item = node("span");
    item.append(node("i", {style: "background:" + COLORS[s.key]}), s.label);
    legend.append(item);
  }
  figure.append(legend);
  const values = series.flatMap(s => s.values.filter(v => v !== null && v !== undefined));
  const top = Math.max(1, ...values);
  const bar = 16, gap = 14, height = 160, left = 46, bottom = 42, head = 16;
  const groupWidth = series.length * bar + gap;
  const width = Math.max(320, left + categories.length * groupWidth + gap);
  const svg = node("svg:svg", {width: width, height: head + height + bottom, role: "img", "aria-label": title});
  svg.append(node("svg:line", {class: "axis", x1: left, y1: head + height, x2: width, y2: head + height}));
  svg.append(node("svg:text", {x: left - 6, y: head + 4, "text-anchor": "end"}, String(top)));
  svg.append(node("svg:text", {x: left - 6, y: head + height, "text-anchor": "end"}, "0"));
  categories.forEach((category, i) => {
    const x0 = left + gap + i * groupWidth;
    series.forEach((s, j) => {
      const value = s.values[i];
      if (value === null || value === undefined) return;
      const h = Math.round((value / top) * height);
      const x = x0 + j * bar;
      const rect = node("svg:rect", {x: x, y: head + height - h, width: bar - 2, height: h, fill: COLORS[s.key],
                                     class: "bar", "data-chart": chartId, "data-series": s.key,
                                     "data-category": category, "data-value": value});
      rect.append(node("svg:title", {}, labels[i] + " — " + s.label + ": " + value));
      svg.append(rect);
      svg.append(node("svg:text", {x: x + (bar - 2) / 2, y: head + height - h - 3, "text-anchor": "middle",
                                   class: "value", "data-chart": chartId, "data-series": s.key,
                                   "data-category": category}, String(value)));
    });
    svg.append(node("svg:text", {x: x0 + (series.length * bar) / 2, y: head + height + 14, "text-anchor": "middle",
                                 class: marked && marked[i] ? "not-ok" : "category"}, "#" + (i + 1)));
  });
  figure.append(svg);
  return figure;
}

// Horizontal bars, one per category, for counts whose labels are long (table and reason code).
function barChart(chartId, title, categories, key, values, colors) {
  const figure = node("figure", {class: "chart", id: chartId});
  figure.append(node("h3", {}, title));
  const top = Math.max(1, ...values);
  const row = 22, span = 380, left = 16 + 7 * Math.max(...categories.map(c => c.length));
  const svg = node("svg:svg", {width: left + span + 60, height: categories.length * row + 8, role: "img",
                               "aria-label": title});
  categories.forEach((category, i) => {
    const y = 4 + i * row, w = Math.max(1, Math.round((values[i] / top) * span));
    svg.append(node("svg:text", {x: left - 8, y: y + 14, "text-anchor": "end"}, category));
    const fill = colors ? colors[i] : COLORS[key];
    const rect = node("svg:rect", {x: left, y: y, width: w, height: row - 6, fill: fill, class: "bar",
                                   "data-chart": chartId, "data-series": key, "data-category": category,
                                   "data-value": values[i]});
    rect.append(node("svg:title", {}, category + ": " + values[i]));
    svg.append(rect);
    svg.append(node("svg:text", {x: left + w + 6, y: y + 14, class: "value", "data-chart": chartId,
                                 "data-series": key, "data-category": category}, String(values[i])));
  });
  figure.append(svg);
  return figure;
}

// A table; columns are [key, label, kind]. Text wraps between words; kind, optional: "long" wraps anywhere (an
// error, a path), "code" too, in monospace (JSON); "id" (monospace) and "instant" do not wrap. Numbers are
// right-aligned, by type. options.rowAttributes(record) gives a row's attributes, options.details(record,
// span) a row to put under it (a run's error) or null.
function table(tableId, columns, records, options) {
  const {rowAttributes, details} = options || {};
  const wrapper = node("div", {class: "scroll"});
  const element = wrapper.appendChild(node("table", {id: tableId}));
  const header = node("tr");
  for (const [, label] of columns) header.append(node("th", {}, label));
  element.appendChild(node("thead")).append(header);
  const body = element.appendChild(node("tbody"));
  for (const record of records) {
    const tr = node("tr", rowAttributes ? rowAttributes(record) : {});
    for (const [key, , kind] of columns) {
      const value = record[key];
      const td = node("td", {"data-column": key}, shown(value));
      if (typeof value === "number") td.classList.add("number");
      if (kind) td.classList.add(kind);
      if (key === "freshness" || key === "status") td.classList.add(String(value));
      tr.append(td);
    }
    body.append(tr);
    const under = details ? details(record, columns.length) : null;
    if (under) {
      tr.classList.add("has-details");
      body.append(under);
    }
  }
  return wrapper;
}

const NOT_OK = new Set(["failed", "interrupted", "abandoned"]);

// The ledger's error of a run that did not finish ok, in a row of its own under the run's row.
function runError(run, span) {
  if ((run.error === null || run.error === undefined) && !NOT_OK.has(run.status)) return null;
  const tr = node("tr", {class: "run-error", "data-run-id": run.run_id});
  tr.append(node("td", {colspan: span, class: "error-text", "data-column": "error"},
                 run.error === null || run.error === undefined ? "(none recorded)" : run.error));
  return tr;
}

function drawRuns(target) {
  const runs = data.runs;
  if (!runs.length) {
    const known = data.warehouse === "ok" ? "No run in the ledger yet." : "Not read: the warehouse is busy.";
    target.append(node("p", {class: "empty"}, known));
    return;
  }
  const ids = runs.map(r => r.run_id);
  const labels = runs.map((r, i) => "#" + (i + 1) + " " + r.command + " " + r.started_at + " " + r.status);
  const marked = runs.map(r => NOT_OK.has(r.status));
  const values = key => runs.map(r => r[key]);
  target.append(columnChart("chart-rows", "Rows landed and dead-lettered per run", ids, labels, [
    {key: "landed", label: "landed", values: values("landed")},
    {key: "dead_lettered", label: "dead-lettered", values: values("dead_lettered")}], marked));
  target.append(columnChart("chart-quarantine-flow", "Quarantine rows opened and resolved per run", ids, labels, [
    {key: "quarantine_opened", label: "opened", values: values("quarantine_opened")},
    {key: "quarantine_resolved", label: "resolved", values: values("quarantine_resolved")}], marked));
  target.append(columnChart("chart-duration", "Duration per run (seconds)", ids, labels, [
    {key: "duration_seconds", label: "seconds", values: values("duration_seconds")}], marked));
  const counts = {};
  for (const run of runs) counts[run.status] = (counts[run.status] || 0) + 1;
  const failed = runs.filter(r => NOT_OK.has(r.status)).length;
  target.append(node("p", {id: "runs-summary"}, runs.length + " runs: " +
    Object.entries(counts).map(([status, count]) => count + " " + status).join(", ") +
    (failed ? ". Each run that did not finish ok has its error under it." : ".")));
  const numbered = runs.map((r, i) => Object.assign({number: "#" + (i + 1)}, r));
  target.append(table("runs-table", [["number", "#", "instant"], ["run_id", "run id", "id"], ["command", "command"],
    ["started_at", "started (UTC)", "instant"], ["duration_seconds", "seconds"], ["status", "status"],
    ["exit_code", "exit"], ["extracted", "extracted"], ["landed", "landed"], ["dead_lettered", "dead-lettered"],
    ["quarantine_opened", "quarantine opened"], ["quarantine_resolved", "quarantine resolved"]], numbered,
    {rowAttributes: r => ({"data-run-id": r.run_id}), details: runError}));
}

// As `elt status` shows them: each book's total = its parts, and the difference (0 when it balances).
function drawBooks(target) {
  const {run, books} = data.books;
  if (!books.length) {
    const known = data.warehouse === "ok" ? "No run has kept books yet." : "Not read: the warehouse is busy.";
    target.append(node("p", {class: "empty"}, known));
    return;
  }
  const unbalanced = books.filter(b => b.difference !== 0).length;
  let which = "The last run that kept books";
  if (run) {
    const number = data.runs.findIndex(r => r.run_id === run.run_id);
    which = "Run " + run.run_id + " (" + run.command + ", started " + run.started_at + " UTC, " + run.status +
      (number >= 0 ? ", #" + (number + 1) + " above" : "") + ")";
  }
  target.append(node("p", {id: "books-run"}, which + ": " +
    (unbalanced ? unbalanced + " of " + books.length + " books do not balance." : "all " + books.length +
     " books balance.")));
  const rows = books.map(b => ({book: b.book, total: b.total_name + " " + b.total,
    parts: b.parts.map(([name, count]) => name + " " + count).join(" + "), difference: b.difference}));
  const element = table("books-table", [["book", "book"], ["total", "total"], ["parts", "= parts"],
    ["difference", "difference"]], rows);
  for (const td of element.querySelectorAll("td[data-column=difference]")) {
    td.classList.add(td.textContent === "0" ? "pass" : "error");
  }
  target.append(element);
}

// Per source the open dead letters' count, then the oldest of them one by one (bounded: the page says how
// many more; `elt dead-letters` lists every one).
function drawDeadLetters(target) {
  const letters = data.dead_letters;
  if (!letters) {
    const known = data.warehouse === "ok" ? "Not read (" + data.dead_letters_unread + ")." :
      "Not read: the warehouse is busy.";
    target.append(node("p", {class: "empty", id: "dead-letters-unread"}, known));
    return;
  }
  target.append(table("dead-letters-per-source", [["source", "source"], ["open", "open dead letters"]],
    Object.entries(letters.open).map(([source, open]) => ({source: source, open: open}))));
  if (!letters.total) {
    target.append(node("p", {class: "empty", id: "dead-letters-shown"}, "No open dead letter."));
    return;
  }
  const told = letters.more ?
    "The " + letters.shown.length + " oldest of " + letters.total + " open dead letters; " + letters.more +
    " more open, not listed here (`elt dead-letters` lists every one)." :
    "All " + letters.total + " open dead letters, the oldest first.";
  target.append(node("p", {id: "dead-letters-shown"}, told));
  target.append(table("dead-letters-table", [["source", "source"], ["resource", "resource"],
    ["location", "location", "long"], ["error", "error", "long"], ["age_hours", "age (h)"],
    ["dead_letter_id", "dead letter id", "id"]], letters.shown));
}

function drawQuarantine(target) {
  const open = data.quarantine;
  if (!open.length) {
    const known = data.warehouse === "ok" ? "No open quarantine row." : "Not read: the warehouse is busy.";
    target.append(node("p", {class: "empty"}, known));
    return;
  }
  const categories = open.map(q => q.table + " · " + q.reason);
  const title = "Open rows by table and reason code (a row breaking two rules counts for both)";
  target.append(barChart("chart-open-quarantine", title, categories, "open", open.map(q => q.open)));
  const columns = [["table", "table"], ["reason", "reason code"], ["open", "open rows"]];
  target.append(table("quarantine-table", columns, open));
}

function drawFreshness(target) {
  const sources = data.sources;
  const loaded = sources.filter(s => s.age_hours !== null);
  if (loaded.length) {
    target.append(barChart("chart-freshness", "Hours since the last completed load (coloured by freshness)",
                           loaded.map(s => s.source), "age_hours", loaded.map(s => s.age_hours),
                           loaded.map(s => VERDICT_COLORS[s.freshness])));
  }
  target.append(table("freshness-table", [["source", "source"], ["last_load_at", "last load (UTC)", "instant"],
    ["age_hours", "age (h)"], ["warn_after", "warn after (h)"], ["error_after", "error after (h)"],
    ["freshness", "freshness"], ["pending_packages", "pending packages"],
    ["dead_letters_last_run", "dead letters, last run"], ["dead_letters_open", "dead letters open"],
    ["cursor", "cursor", "code"]], sources));
}

document.getElementById("meta").textContent =
  "Target " + data.target + " · generated " + data.generated_at + " (UTC) · " + data.runs.length + " runs";
if (data.warehouse !== "ok") {
  const known = "Shown: what is known without it — each source's cursor and pending packages.";
  document.getElementById("warehouse").append(node("p", {class: "busy", id: "warehouse-busy"},
    "Warehouse not read (" + data.warehouse + "). " + known));
}
drawRuns(document.getElementById("runs"));
drawBooks(document.getElementById("books"));
drawDeadLetters(document.getElementById("dead-letters"));
drawQuarantine(document.getElementById("quarantine"));
drawFreshness(document.getElementById("freshness"));
</script>
</body>
</html>
"""

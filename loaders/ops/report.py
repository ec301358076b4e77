"""`elt report`: one static HTML page of what the ELT has been doing, to open from disk or attach to a ticket.

Runs over time (rows landed and dead-lettered, quarantine rows opened and resolved, duration), the open
quarantine by table and reason code, and each source's freshness. No server: the page is self-contained
(inline CSS, SVG drawn by an inline script, no external URL), its data embedded as one JSON document, so
it works from file:// and shows the same numbers wherever it is opened.

What `elt status` collects is reused as it is (`status.collect`); the only extra read is the ledger's
per-source rows, summed per run. On DuckDB while a run holds the file the page is still written, and says
the warehouse is busy above what could be known without it (each source's cursor and pending packages).
"""

from __future__ import annotations

import html
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from loaders.core.outcomes import ExitCode, RunLocked
from loaders.core.registry import SOURCE_NAMES
from loaders.core.settings import Settings
from loaders.core.timestamps import iso
from loaders.ops.runner import Result
from loaders.ops.status import collect, freshness_limits
from loaders.warehouse import dialect
from loaders.warehouse.ops_tables import RUN_SOURCES


def report(settings: Settings, output: Path, runs: int) -> Result:
    """Write one static HTML page: runs over time, open quarantine by table and reason, freshness per source."""
    data = gather(settings, list(SOURCE_NAMES), runs)
    path = output.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
    return Result(ExitCode.OK, f"elt report: wrote {path} ({len(data['runs'])} runs)")


def gather(settings: Settings, sources: list[str], runs: int) -> dict[str, Any]:
    """Everything the page shows, JSON-ready: runs oldest first, each with its sources' rows summed."""
    status = collect(settings, sources, limit=runs)
    totals = run_totals(settings, [run["run_id"] for run in status.runs]) if status.warehouse == "ok" else {}
    empty = {"extracted": None, "landed": None, "dead_lettered": None}
    return {
        "target": settings.target,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "warehouse": status.warehouse,
        "runs": [
            {
                "run_id": run["run_id"],
                "command": run["command"],
                "started_at": iso_or_none(run["started_at"]),
                "finished_at": iso_or_none(run["finished_at"]),
                "status": run["status"],
                "exit_code": run["exit_code"],
                "duration_seconds": (
                    round((run["finished_at"] - run["started_at"]).total_seconds(), 1) if run["finished_at"] else None
                ),
                **totals.get(run["run_id"], empty),
                "quarantine_opened": run["quarantine_opened"],
                "quarantine_resolved": run["quarantine_resolved"],
            }
            for run in reversed(status.runs)  # status lists the newest first; a chart over time reads left to right
        ],
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


def run_totals(settings: Settings, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """run id -> rows extracted, landed and dead-lettered, summed over the sources it loaded (a run that
    loaded nothing, `elt build`, has no entry). The runs came from the ledger, so its tables exist; empty when
    a run took the DuckDB file since `status.collect` read it."""
    if not run_ids:
        return {}
    warehouse = dialect(settings)
    try:
        with warehouse.connect() as conn:
            cursor = conn.cursor()
            cursor.execute(
                f"select run_id, sum(extracted), sum(landed), sum(dead_lettered) from {RUN_SOURCES.qualified}"
                f" where run_id in ({warehouse.placeholders(len(run_ids))}) group by run_id",
                run_ids,
            )
            found = cursor.fetchall()
    except RunLocked:
        return {}
    return {
        run_id: {"extracted": int(extracted), "landed": int(landed), "dead_lettered": int(dead)}
        for run_id, extracted, landed, dead in found
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
  table { border-collapse: collapse; margin-top: .5rem; font-size: 13px; }
  th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #eee; }
  td { white-space: nowrap; }
  td.number { text-align: right; font-variant-numeric: tabular-nums; }
  .pass { color: #1b7f3b; } .warn { color: #b26b00; } .error, .failed { color: #b3261e; }
  .unknown, .running, .abandoned { color: #777; }
</style>
</head>
<body>
<h1>ELT report</h1>
<p class="meta" id="meta"></p>
<div id="warehouse"></div>
<h2>Runs over time</h2>
<div id="runs"></div>
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
// series, category and value as data attributes, and its value is written above it.
function columnChart(chartId, title, categories, labels, series) {
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
    svg.append(node("svg:text", {x: x0 + (series.length * bar) / 2, y: head + height + 14, "text-anchor": "middle"},
                    "#" + (i + 1)));
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

function table(tableId, columns, records) {
  const wrapper = node("div", {class: "scroll"});
  const element = wrapper.appendChild(node("table", {id: tableId}));
  const header = node("tr");
  for (const [, label] of columns) header.append(node("th", {}, label));
  element.appendChild(node("thead")).append(header);
  const body = element.appendChild(node("tbody"));
  for (const record of records) {
    const tr = node("tr");
    for (const [key] of columns) {
      const value = record[key];
      const td = node("td", {"data-column": key}, shown(value));
      if (typeof value === "number") td.classList.add("number");
      if (key === "freshness" || key === "status") td.classList.add(String(value));
      tr.append(td);
    }
    body.append(tr);
  }
  return wrapper;
}

function drawRuns(target) {
  const runs = data.runs;
  if (!runs.length) {
    const known = data.warehouse === "ok" ? "No run in the ledger yet." : "Not read: the warehouse is busy.";
    target.append(node("p", {class: "empty"}, known));
    return;
  }
  const ids = runs.map(r => r.run_id);
  const labels = runs.map((r, i) => "#" + (i + 1) + " " + r.command + " " + r.started_at);
  const values = key => runs.map(r => r[key]);
  target.append(columnChart("chart-rows", "Rows landed and dead-lettered per run", ids, labels, [
    {key: "landed", label: "landed", values: values("landed")},
    {key: "dead_lettered", label: "dead-lettered", values: values("dead_lettered")}]));
  target.append(columnChart("chart-quarantine-flow", "Quarantine rows opened and resolved per run", ids, labels, [
    {key: "quarantine_opened", label: "opened", values: values("quarantine_opened")},
    {key: "quarantine_resolved", label: "resolved", values: values("quarantine_resolved")}]));
  target.append(columnChart("chart-duration", "Duration per run (seconds)", ids, labels, [
    {key: "duration_seconds", label: "seconds", values: values("duration_seconds")}]));
  const numbered = runs.map((r, i) => Object.assign({number: "#" + (i + 1)}, r));
  target.append(table("runs-table", [["number", "run"], ["run_id", "run id"], ["command", "command"],
    ["started_at", "started (UTC)"], ["duration_seconds", "seconds"], ["status", "status"], ["exit_code", "exit"],
    ["extracted", "extracted"], ["landed", "landed"], ["dead_lettered", "dead-lettered"],
    ["quarantine_opened", "quarantine opened"], ["quarantine_resolved", "resolved"]], numbered));
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
  target.append(table("freshness-table", [["source", "source"], ["last_load_at", "last load (UTC)"],
    ["age_hours", "age (h)"], ["warn_after", "warn after (h)"], ["error_after", "error after (h)"],
    ["freshness", "freshness"], ["pending_packages", "pending packages"],
    ["dead_letters_last_run", "dead letters, last run"], ["dead_letters_open", "dead letters open"],
    ["cursor", "cursor"]], sources));
}

document.getElementById("meta").textContent =
  "Target " + data.target + " · generated " + data.generated_at + " (UTC) · " + data.runs.length + " runs";
if (data.warehouse !== "ok") {
  const known = "Shown: what is known without it — each source's cursor and pending packages.";
  document.getElementById("warehouse").append(node("p", {class: "busy", id: "warehouse-busy"},
    "Warehouse not read (" + data.warehouse + "). " + known));
}
drawRuns(document.getElementById("runs"));
drawQuarantine(document.getElementById("quarantine"));
drawFreshness(document.getElementById("freshness"));
</script>
</body>
</html>
"""

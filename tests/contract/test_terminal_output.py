"""What `elt run` writes while it works: JSON events (one object per line, each with the run id) when stderr
is a file or a pipe, as a scheduler sees it; readable lines and progress bars (records extracted per source
table, dbt's nodes) when stderr is a terminal, as an engineer at a shell sees it. The summary line is on
stdout either way."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

from loaders.simulate import SimulationConfig, generate
from tests.support.cli import PROJECT_DIR, elt
from tests.support.project import Project

WORLD = SimulationConfig(seed=9, customers=10, orders_per_day=10)


def run_on_a_terminal() -> tuple[int, str, str]:
    """`elt run` with stderr on a pseudo-terminal: its exit code, stdout, and what the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loaders.cli", "run"], cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=slave, text=True
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: every process writing to it has ended
            break
        if not chunk:
            break
        shown += chunk
    stdout = proc.stdout.read() if proc.stdout else ""
    os.close(master)
    return proc.wait(timeout=600), stdout, shown.decode(errors="replace")


def test_events_are_json_lines_for_machines_and_progress_bars_on_a_terminal(project: Project) -> None:
    generate(project.root, WORLD, through_day=1)
    piped = elt("run")
    assert piped.returncode == 0, piped.stderr[-3000:]
    events = [json.loads(line) for line in piped.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if e["event"] in ("run_started", "run_finished")] == [
        "run_started",
        "run_finished",
    ]
    run_ids = {event.get("run_id") for event in events}
    assert len(run_ids) == 1 and None not in run_ids, run_ids
    assert "records extracted" not in piped.stderr

    generate(project.root, WORLD, through_day=2)
    code, stdout, terminal = run_on_a_terminal()
    assert code == 0, terminal[-3000:]
    assert stdout.startswith("elt run ok:"), stdout
    assert "shop_api.orders:" in terminal and "records extracted" in terminal, terminal[-3000:]
    assert "dbt build" in terminal and "run_finished" in terminal
    assert '{"ts"' not in terminal  # readable lines, not JSON

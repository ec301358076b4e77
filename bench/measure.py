"""What a command costs: wall time, CPU of its process tree, the peak RSS of every process in it, the
moments at which it reported its events; and beside it, what a local PostgreSQL server spent meanwhile and
dbt's own node times.

- CPU: `os.wait4` of the command, whose rusage adds the children it reaped (dbt under `elt`) to its own.
- Peak RSS per process: `/proc/<pid>/status` `VmHWM` (the kernel's high-water mark of the process's
  resident set) of the command and of every descendant, polled every `POLL_SECONDS`; the last sample
  before a process exits is its peak up to the growth of its last tenth of a second. `ru_maxrss` of the
  wait (the largest process of the tree) is kept beside it as a check.
- Events: `elt` writes one JSON object per line on stderr when stderr is not a terminal; each is taken
  with the time it arrived and the command's own CPU (utime + stime of the root process, its children
  excluded) at that moment, so a loader's share of a run can be cut out of it (`load_started` ..
  `load_finished`).
- Server CPU: the growth of the postmaster's CPU and its reaped children's (its exited backends'), read
  from /proc when the server is local; None when it is not.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Event:
    name: str
    fields: dict[str, Any]
    at: float
    """Seconds since the command started."""
    cpu_s: float | None
    """The root process's own CPU seconds at that moment."""


@dataclass
class Measured:
    """What one command cost."""

    command: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    """User + system CPU of the command and every descendant it reaped."""
    max_rss_mb: float
    """ru_maxrss of the wait: the largest process of the tree, the command's moments between fork and exec
    included (when it still was a copy of this process)."""
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    """Per kind of process (`classify`): the highest VmHWM seen of any process of that kind."""
    events: list[Event] = field(default_factory=list)
    stdout: str = ""
    timed_out: bool = False

    def event(self, name: str, **match: Any) -> Event | None:
        for event in self.events:
            if event.name == name and all(event.fields.get(k) == v for k, v in match.items()):
                return event
        return None


def classify(cmdline: list[str]) -> str:
    """`dbt` for dbt's process, `elt` for the harness (the loaders run in it), the module of a
    `python -m MODULE`, else the program's name. A child seen between fork and exec still has its
    parent's command line, so it counts as its parent (whose size it shares), never as the program it
    is about to become."""
    text = " ".join(cmdline)
    if any(Path(part).name == "dbt" for part in cmdline[:2]) or "dbt.cli" in text:
        return "dbt"
    if any(Path(part).name == "elt" for part in cmdline[:2]) or "loaders.cli" in text:
        return "elt"
    if len(cmdline) > 2 and cmdline[1] == "-m":
        return cmdline[2]
    return Path(cmdline[0]).name if cmdline else "?"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def own_cpu(pid: int) -> float | None:
    """utime + stime of one live process (its children excluded)."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu(pid: int | None) -> float | None:
    """utime + stime + cutime + cstime: a process's CPU and that of the children it reaped (a PostgreSQL
    postmaster's exited backends)."""
    fields = None if pid is None else _stat_fields(pid)
    return None if fields is None else sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def rusage_cpu(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU of this process (RUSAGE_SELF) or of the children it reaped (RUSAGE_CHILDREN)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def server_cpu(postmaster: int | None, settle_s: float = 1.0) -> Iterator[list[float | None]]:
    """What a local PostgreSQL server spent during the block: the growth of its postmaster's `tree_cpu`,
    taken `settle_s` after the block so that the postmaster has reaped the block's backends. The list
    yielded holds it after the block (None when the postmaster is unknown or unreadable)."""
    spent: list[float | None] = []
    before = tree_cpu(postmaster)
    yield spent
    if postmaster is not None:
        time.sleep(settle_s)
    after = tree_cpu(postmaster)
    spent.append(None if before is None or after is None else round(after - before, 2))


def dbt_nodes(target_path: Path) -> list[tuple[str, str, float]]:
    """(unique id, status, seconds) of every node of the last dbt invocation (its run_results.json in
    `target_path`), slowest first; none when it wrote no results."""
    results = target_path / "run_results.json"
    if not results.exists():
        return []
    nodes = [
        (str(n["unique_id"]), str(n["status"]), float(n.get("execution_time") or 0.0))
        for n in json.loads(results.read_text()).get("results", [])
    ]
    return sorted(nodes, key=lambda node: -node[2])


def node_seconds(nodes: list[tuple[str, str, float]], *kinds: str) -> float:
    """The sum of the nodes' times whose kind (`model`, `test`, ...: the unique id's first part) is one of
    `kinds`."""
    return round(sum(s for uid, _, s in nodes if uid.split(".", 1)[0] in kinds), 2)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _descendants(root: int) -> list[int]:
    tree, found, todo = _children(), [root], [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cmdline(pid: int) -> list[str]:
    try:
        return [part for part in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0") if part]
    except OSError:
        return []


class _Poller(threading.Thread):
    def __init__(self, root: int) -> None:
        super().__init__(daemon=True, name="bench-rss-poller")
        self.root = root
        # keyed by (pid, kind): a child seen between fork and exec is still a copy of its parent, and its
        # high-water mark restarts with the program it executes
        self.peaks: dict[tuple[int, str], float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for pid in _descendants(self.root):
                kind, peak = classify(_cmdline(pid)), _vm_hwm_mb(pid)
                if peak is not None:
                    self.peaks[pid, kind] = max(peak, self.peaks.get((pid, kind), 0.0))
            self.stopping.wait(POLL_SECONDS)

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for (_, kind), peak in self.peaks.items():
            out[kind] = round(max(peak, out.get(kind, 0.0)), 1)
        return out


def run_measured(
    command: list[str],
    env: dict[str, str],
    cwd: Path,
    log_file: Path,
    timeout_s: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Measured:
    """Run `command`, its stderr appended to `log_file`; stdout is returned (elt's summary line)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a timeout stops the command and dbt under it, and nothing else
    )
    poller = _Poller(proc.pid)
    poller.start()
    events: list[Event] = []
    stdout: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        with open(log_file, "a") as log:
            for line in proc.stderr:
                log.write(line)
                log.flush()
                if on_line is not None:
                    on_line(line)
                if not line.startswith("{"):
                    continue
                try:
                    payload = json.loads(line)
                except ValueError:
                    continue
                if isinstance(payload, dict) and "event" in payload:
                    name = str(payload.pop("event"))
                    events.append(Event(name, payload, time.monotonic() - started, own_cpu(proc.pid)))

    def read_stdout() -> None:
        assert proc.stdout is not None
        stdout.extend(proc.stdout)

    readers = [threading.Thread(target=read_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
    for reader in readers:
        reader.start()
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        os.killpg(proc.pid, signal.SIGKILL)  # the group this call created for the command

    timer = threading.Timer(timeout_s, stop) if timeout_s else None
    if timer is not None:
        timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if timer is not None:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    poller.stopping.set()
    poller.join()
    for reader in readers:
        reader.join()
    return Measured(
        command=command,
        returncode=proc.returncode,
        wall_s=round(wall, 2),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
        max_rss_mb=round(usage.ru_maxrss / 1024, 1),
        peak_rss_mb=poller.by_kind(),
        events=events,
        stdout="".join(stdout),
        timed_out=timed_out.is_set(),
    )

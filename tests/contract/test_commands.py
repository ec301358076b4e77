"""Every command of the README's command table is run by a test as a user runs it: a subprocess, with the
arguments the README shows — here, or through the runbook (docs/runbook.md, whose commands tests run as
written in a shell).

The check reads the table and the tests' sources: a command no test starts as `elt ...` (through
`tests/support/cli.py`'s `elt`, a `python -m loaders.cli` subprocess, or a runbook line) fails it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from loaders.simulate import SimulationConfig, generate
from tests.support.cli import PROJECT_DIR
from tests.support.postgres import free_port
from tests.support.runbook import procedures

README = PROJECT_DIR / "README.md"
TESTS = PROJECT_DIR / "tests"


def readme_commands() -> set[str]:
    """`run`, `dead-letters replay`, `state get`, …: the commands the README's table names."""
    found = set()
    for line in README.read_text().splitlines():
        match = re.match(r"\| `elt ([a-z-]+)(?: ([a-z-]+))?", line)
        if match:
            first, second = match.groups()
            grouped = first in ("dead-letters", "simulate", "state") and second is not None
            found.add(f"{first} {second}" if grouped else first)
    return found


def started_by_tests() -> set[str]:
    """The commands the tests start as subprocesses, and those the runbook's procedures run."""
    started: set[str] = set()
    invocation = re.compile(r'(?:\belt\(|"loaders\.cli",)\s*"([a-z-]+)"(?:,\s*"([a-z-]+)")?')
    for path in TESTS.rglob("test_*.py"):
        for first, second in invocation.findall(path.read_text()):
            started.update({first, f"{first} {second}"} if second else {first})
    for commands in procedures().values():
        for command in commands:
            match = re.search(r"\belt ([a-z-]+)(?: ([a-z-]+))?", command)
            if match:
                started.update({match.group(1), " ".join(g for g in match.groups() if g)})
    return started


def test_every_command_of_the_readme_is_run_by_a_test_as_a_subprocess() -> None:
    commands = readme_commands()
    assert {"run", "load", "build", "status", "state set", "simulate generate", "demo"} <= commands, commands
    missing = commands - started_by_tests()
    assert not missing, f"README commands no test runs as a user does: {sorted(missing)}"


def test_simulate_serve_serves_a_generated_world(tmp_path: Path) -> None:
    generate(tmp_path, SimulationConfig(seed=3, customers=5, orders_per_day=5), through_day=1)
    port, token = free_port(), "a-token-for-the-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "loaders.cli", "simulate", "serve", "--root", str(tmp_path), "--port", str(port)],
        cwd=PROJECT_DIR,
        env={**os.environ, "SOURCES__SHOP_API__TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/orders"
        for _ in range(100):
            try:
                answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, params={"limit": 2}, timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert answer.status_code == 200 and len(answer.json()["data"]) == 2, answer.text
        assert requests.get(url, timeout=5).status_code == 401  # no token, no orders
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_simulate_serve_without_a_token_says_which_variable_to_set(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name != "SOURCES__SHOP_API__TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "simulate", "serve", "--root", str(tmp_path)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "SOURCES__SHOP_API__TOKEN" in proc.stderr, proc.stderr

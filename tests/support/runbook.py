"""The runbook (docs/runbook.md) as tests run it: each procedure's commands, exactly as written.

A procedure's commands are the lines of its ```sh blocks, and the command of each schedule line of its
```cron block as cron runs it. The test that puts the deployment in a procedure's situation runs them
through the `runbook` fixture, in order, in a shell with the project's virtualenv on PATH; the fixture
fails the test when it left one of a procedure's commands unrun. `tests/contract/test_runbook.py` checks
that every procedure has its test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
RUNBOOK = PROJECT_DIR / "docs" / "runbook.md"


def procedures() -> dict[str, list[str]]:
    """Each `## N. Title` of the runbook and its commands, in order."""
    found: dict[str, list[str]] = {}
    for section in re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)[1:]:
        title = re.sub(r"^\d+\.\s*", "", section.splitlines()[0]).strip()
        commands = []
        for kind, block in re.findall(r"```(sh|cron)\n(.*?)```", section, flags=re.DOTALL):
            for line in block.splitlines():
                if not line.strip() or line.startswith("#"):
                    continue
                if kind == "cron":
                    fields = line.split(maxsplit=5)
                    if "=" in fields[0]:
                        continue  # a crontab variable: the test sets its own
                    line = fields[5]  # after minute, hour, day, month and weekday
                commands.append(line)
        found[title] = commands
    return found


class Runbook:
    def __init__(self) -> None:
        self.procedures = procedures()
        self.ran: dict[str, set[int]] = {}

    def run(
        self, title: str, cwd: Path, env: dict[str, str] | None = None, expect: int = 0, index: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one of the procedure's commands as written (by default the first not run yet); it must exit
        `expect`."""
        done = self.ran.setdefault(title, set())
        if index is None:
            index = min(set(range(len(self.procedures[title]))) - done)
        command = self.procedures[title][index]
        done.add(index)
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env={**os.environ, "PATH": path, **(env or {})},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == expect, (
            f"{title}: `{command}` exited {proc.returncode}\n{proc.stdout}{proc.stderr[-3000:]}"
        )
        return proc

    def run_all(
        self, title: str, cwd: Path, env: dict[str, str] | None = None
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run the rest of the procedure in order; every command must exit 0."""
        left = len(self.procedures[title]) - len(self.ran.get(title, ()))
        return [self.run(title, cwd, env) for _ in range(left)]

    def unrun(self) -> dict[str, list[str]]:
        return {
            title: [c for i, c in enumerate(self.procedures[title]) if i not in done]
            for title, done in self.ran.items()
            if len(done) < len(self.procedures[title])
        }


@pytest.fixture
def runbook() -> Iterator[Runbook]:
    book = Runbook()
    yield book
    assert not book.unrun(), f"runbook commands this test left unrun: {book.unrun()}"

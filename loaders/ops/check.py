"""`elt check`: can this machine reach the warehouse and every source, with the settings it has? One line
each, never a secret, nothing loaded (like `meltano config test`). Each source's check is in its spec."""

from __future__ import annotations

from loaders.core.outcomes import Check, ExitCode
from loaders.core.registry import SOURCE_NAMES
from loaders.core.settings import Settings
from loaders.ops.runner import Result
from loaders.sources import spec
from loaders.warehouse import dialect


def run_checks(settings: Settings) -> list[Check]:
    return [dialect(settings).check(), *(spec(name).check() for name in SOURCE_NAMES)]


def check(settings: Settings) -> Result:
    checks = run_checks(settings)
    code = ExitCode.OK if all(result.ok for result in checks) else ExitCode.CHECK_FAILED
    return Result(code, "\n".join(result.describe() for result in checks))

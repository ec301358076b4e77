"""One ELT deployment under test: sample sources, an API server, a warehouse, and ways to run and read.

Loaders run in-process (dlt), dbt as the harness runs it (a subprocess), and reads go through the
harness's own warehouse connection, so tests exercise the code a scheduler runs.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from loaders.core.outcomes import DbtOutcome, ExitCode
from loaders.core.registry import QUARANTINE_KEYS, SOURCE_NAMES
from loaders.core.settings import Settings
from loaders.landing.batch import Tally
from loaders.landing.pipelines import LoadReport, load_source
from loaders.ops.dbt import run_dbt
from loaders.ops.load import load_sources
from loaders.ops.run import elt_run
from loaders.simulate import ApiServer, ApiStore, AppDb, FaultPlan, write_payments_file
from loaders.sources import spec
from loaders.warehouse import connect, dialect, fetch_all

SOURCES = list(SOURCE_NAMES)


def land(settings: Settings, source: str, on_reset: Any = None) -> LoadReport:
    """One source through its pipeline (the packages a crash left, then the new extract), as a load does."""
    return load_source(settings, spec(source), Tally(), on_reset=on_reset)


CANONICAL_KEYS = {
    "customers": ("customer_id",),
    "products": ("sku",),
    "orders": ("order_id",),
    "order_items": ("order_id", "line_number"),
    "payments": ("payment_id",),
    "daily_revenue": ("revenue_date", "currency"),
}


@dataclass(frozen=True)
class Warehouse:
    target: str
    env: dict[str, str]


@dataclass
class Project:
    warehouse: Warehouse
    root: Path
    monkeypatch: pytest.MonkeyPatch
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    api: ApiServer | None = None

    @classmethod
    @contextlib.contextmanager
    def started(
        cls,
        warehouse: Warehouse,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        faults: FaultPlan | None = None,
        name: str = "sources",
    ) -> Iterator[Project]:
        root = tmp_path / name
        (root / "payments").mkdir(parents=True)
        project = cls(warehouse, root, monkeypatch)
        AppDb(root)  # creates the database with the contract's tables
        ApiStore(root)
        with ApiServer(root, token=project.token, faults=faults or FaultPlan()) as api:
            project.api = api
            for name, value in project.env().items():
                monkeypatch.setenv(name, value)
            yield project

    # -- configuration -----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        assert self.api is not None
        return {
            **self.warehouse.env,
            "ELT_STATE_DIR": str(self.root.parent / f"{self.root.name}-state"),
            "SOURCES__SHOP_API__BASE_URL": self.api.base_url,
            "SOURCES__SHOP_API__TOKEN": self.token,
            "SOURCES__APP_DB__CREDENTIALS": f"sqlite:///{self.root / 'app.db'}",
            "SOURCES__PAYMENTS_FILES__BUCKET_URL": str(self.root / "payments"),
            "RUNTIME__LOG_LEVEL": "ERROR",
            # Keep retries quick in tests; the production default stays as dlt's.
            "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05",
            # Worlds with damaged records re-serve them on quiet runs; the exit code of a run that proves a
            # resume or a lock must not hang on the dead-letter threshold (tests/contract/test_thresholds.py
            # sets its own).
            "ELT_MAX_DEAD_LETTER_RATE": "1",
        }

    @property
    def settings(self) -> Settings:
        return Settings.from_env()

    @property
    def pipelines_dir(self) -> Path:
        """dlt's working folder of this deployment's warehouse."""
        return dialect(self.settings).pipelines_dir()

    # -- sources -----------------------------------------------------------------------------------
    @property
    def app_db(self) -> AppDb:
        return AppDb(self.root)

    @property
    def api_store(self) -> ApiStore:
        return ApiStore(self.root)

    def deliver(self, name: str, rows: list[Any], delivered_at: Any) -> Path:
        return write_payments_file(self.root, name, rows, delivered_at)

    # -- running -----------------------------------------------------------------------------------
    def load(self, *sources: str) -> list[Any]:
        outcomes = load_sources(self.settings, list(sources or SOURCES))
        failed = [o for o in outcomes if o.error]
        assert not failed, failed
        return outcomes

    def build(self, *args: str, lookback_versions: int | None = None) -> DbtOutcome:
        """`dbt build`; with no safety margin unless asked (the suite's ELT_LOOKBACK_VERSIONS is 0,
        tests/conftest.py), because no promise may rest on it."""
        dbt_vars = {} if lookback_versions is None else {"lookback_versions": lookback_versions}
        outcome = run_dbt(self.settings, ["build", "--exclude-resource-type", "unit_test", *args], dbt_vars=dbt_vars)
        assert outcome.returncode == 0, f"dbt build failed: {outcome.statuses}"
        return outcome

    def run(self, *, lookback_versions: int | None = None) -> None:
        """Load every source, then build: what `elt run` does."""
        self.load()
        self.build(lookback_versions=lookback_versions)

    def elt_run(self) -> tuple[ExitCode, str]:
        return elt_run(self.settings, SOURCES, [])

    # -- reading -----------------------------------------------------------------------------------
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return fetch_all(self.settings, sql)

    def execute(self, sql: str) -> None:
        with connect(self.settings, read_only=False) as conn:
            conn.cursor().execute(sql)

    def scalar(self, sql: str) -> Any:
        return self.query(sql)[0][0]

    def canonical(self, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        keys = CANONICAL_KEYS[table]
        rows = self.query(f"select * from analytics.{table} order by {', '.join(keys)}")
        key_positions = self._positions(f"analytics.{table}", keys)
        return {tuple(row[i] for i in key_positions): row for row in rows}

    def open_quarantine(self, table: str) -> dict[str, tuple[str | None, str]]:
        """key -> (version_at, failed_rules) of the open rows."""
        key = QUARANTINE_KEYS[table]
        rows = self.query(
            f"select {key}, version_at, failed_rules from quarantine.{table} where not is_resolved order by {key}"
        )
        keys = [row[0] for row in rows]
        assert len(keys) == len(set(keys)), f"more than one open quarantine row for a key in {table}"
        return {row[0]: (row[1], row[2]) for row in rows}

    def snapshot(self) -> dict[str, Any]:
        """Everything the incremental-equals-full-refresh promise covers."""
        state: dict[str, Any] = {f"analytics.{t}": self.canonical(t) for t in CANONICAL_KEYS}
        state.update({f"quarantine.{t}": self.open_quarantine(t) for t in QUARANTINE_KEYS})
        return state

    def _positions(self, relation: str, names: tuple[str, ...]) -> list[int]:
        return [self.columns(relation).index(name) for name in names]

    def columns(self, relation: str) -> list[str]:
        """The relation's column names, in order."""
        if self.warehouse.target == "spark":
            return [row[0] for row in self.query(f"describe {relation}") if row[0] and not row[0].startswith("#")]
        schema, table = relation.split(".")
        return [
            row[0]
            for row in self.query(
                "select column_name from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
            )
        ]

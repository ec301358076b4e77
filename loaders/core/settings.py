"""The harness's settings: one warehouse configuration that both dlt and dbt read (contract 1.4), from
`ELT_*`, libpq's `PG*` and `ELT_SPARK_*` through pydantic-settings. What each target makes of them (dbt's
environment, dlt's destination, the state folder) is its dialect's business (loaders/warehouse/).

Source settings (base URL, token, database URL, bucket URL) are not here: the sources receive them
through dlt's own configuration resolution (`[sources.<name>]` in `.dlt/*.toml`, or environment
variables such as `SOURCES__SHOP_API__TOKEN`, which win).
"""

from __future__ import annotations

import argparse
import contextvars
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from loaders.core.registry import PROJECT_DIR

Target = Literal["duckdb", "postgres", "spark"]

# elt run's thresholds, checked after dbt (see loaders/ops/run.py). The default dead-letter rate is a
# broken source, not the odd damaged record: a format change (a renamed key, another CSV delimiter)
# dead-letters all of a source's records, while the sample world's 1 % of damaged records gives per-run
# rates up to 16 % on a small delivery (3 of 19 settlement rows on its first day, 5-6 % of the API's
# re-read windows) and 14 % in a quiet run (the API re-serves damaged records without a timestamp on
# every call, and they count each time). New quarantine rows have no default limit: they are the rules working, their
# number follows the volume of the deployment, and no figure fits every deployment.
DEFAULT_MAX_DEAD_LETTER_RATE = 0.2
THRESHOLD_VARIABLES = {
    "max_dead_letter_rate": "ELT_MAX_DEAD_LETTER_RATE",
    "max_new_quarantine": "ELT_MAX_NEW_QUARANTINE",
}
NO_LIMIT = ("none", "unlimited")


class InvalidSetting(argparse.ArgumentTypeError, ValueError):
    """A setting that cannot be used. A ValueError to code, an argument error (exit 2) to argparse."""


def parse_rate(text: str) -> float:
    """A share of records between 0 and 1 (`0.05`), for ELT_MAX_DEAD_LETTER_RATE / --max-dead-letter-rate."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:  # NaN fails both comparisons
        raise InvalidSetting(f"a dead-letter rate is a share between 0 and 1 (0.05 = 5 %), not {text!r}")
    return value


def parse_limit(text: str) -> int | None:
    """A count of rows (`0`, `100`) or `none` for no limit, for ELT_MAX_NEW_QUARANTINE / --max-new-quarantine."""
    if text.strip().lower() in NO_LIMIT:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidSetting(f"a quarantine limit is a whole number of rows >= 0 or 'none', not {text!r}")
    return value


class FromEnvironment(EnvSettingsSource):
    """pydantic-settings' environment source, reading the mapping `Settings.from_env` was given."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self.environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


ENVIRON: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("environ", default=None)


class EnvironmentSettings(BaseSettings):
    """Settings read by pydantic-settings from the environment (or the mapping given to `from_env`);
    empty variables count as unset, as libpq and the shell treat them."""

    model_config = SettingsConfigDict(frozen=True, env_ignore_empty=True, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, *_: Any, **__: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, FromEnvironment(settings_cls, ENVIRON.get() or os.environ)


class PostgresSettings(EnvironmentSettings):
    """libpq's own variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE); a missing one falls back to
    libpq's default, as psql would."""

    model_config = SettingsConfigDict(env_prefix="PG")

    host: str = "localhost"
    port: int = 5432
    user: str = Field(default_factory=lambda: os.environ.get("USER", "postgres"))
    password: SecretStr = SecretStr("")
    database: str | None = None

    @property
    def dbname(self) -> str:
        return self.database or self.user

    def dlt_credentials(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "password": self.password.get_secret_value(),
            "database": self.dbname,
        }


class SparkSettings(EnvironmentSettings):
    """Apache Spark (`ELT_SPARK_*`): the Thrift server the harness and dbt connect to (a cluster's, or the
    local one `python -m loaders.warehouse.spark_server` starts), and the lake the loaders land raw Parquet in."""

    model_config = SettingsConfigDict(env_prefix="ELT_SPARK_")

    host: str = "127.0.0.1"
    port: int = 10000
    user: str = "elt"
    # How dbt reaches Spark (profiles.yml): `thrift` (a Thrift server: the harness's way too) or `session`
    # (dbt inside a Spark driver that already runs, as on a Databricks-style job cluster).
    method: Literal["thrift", "session"] = "thrift"


DEFAULT_DUCKDB_MEMORY_LIMIT = "1GB"  # the same default in profiles.yml
MEMORY_SIZE = r"\d+(\.\d+)?\s*([KMGT]i?B|B|%)"
"""A size as DuckDB's `memory_limit` reads it: `512MB`, `2GiB`, `50%`."""


class Settings(EnvironmentSettings):
    """The harness's settings, from `ELT_*` variables (ELT_TARGET, ELT_DUCKDB_PATH, ELT_DUCKDB_MEMORY_LIMIT,
    ELT_LAKE_PATH, ELT_PROJECT_DIR, ELT_STATE_DIR, ELT_MAX_DEAD_LETTER_RATE, ELT_MAX_NEW_QUARANTINE,
    ELT_LOOKBACK_VERSIONS), libpq's
    `PG*` and `ELT_SPARK_*`."""

    model_config = SettingsConfigDict(env_prefix="ELT_")

    target: Target = "duckdb"
    duckdb_path: Path = PROJECT_DIR / "warehouse.duckdb"
    # The most memory DuckDB takes in each process (the loaders', dbt's); beyond it DuckDB spills to disk.
    # Its own default is 80 % of the machine, which made every process's peak grow with the data.
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    # Spark: the folder (or any fsspec URL Spark reads too) where the loaders land each source as Parquet,
    # `<lake_path>/raw_<source>/<table>/`, registered in Spark's catalog as the `raw_<source>` tables.
    lake_path: str = str(PROJECT_DIR / "lake")
    project_dir: Path = PROJECT_DIR  # another copy of the dbt project (a fork's, a test's)
    # dlt's local working folder (pending load packages live here between a crash and the resume).
    state_dir: Path = PROJECT_DIR / ".elt"
    # elt run exits DEAD_LETTER_THRESHOLD when a source dead-letters more than this share of what it
    # extracted in the run (a source that extracted nothing never trips it) ...
    max_dead_letter_rate: float = Field(default=DEFAULT_MAX_DEAD_LETTER_RATE, ge=0, le=1)
    # ... and QUARANTINE_THRESHOLD when the run opens more quarantine rows than this (None: no limit).
    max_new_quarantine: int | None = Field(default=None, ge=0)
    # The intermediate models' safety margin in the harness's builds (dbt var `lookback_versions`); None:
    # dbt_project.yml's. Passed on every dbt command the harness runs, so all of them share one parse.
    lookback_versions: int | None = Field(default=None, ge=0)

    @field_validator("duckdb_path", "project_dir", "state_dir", mode="after")
    @classmethod
    def absolute(cls, path: Path) -> Path:
        return path.resolve()

    @field_validator("duckdb_memory_limit", mode="after")
    @classmethod
    def memory_size(cls, value: str) -> str:
        if re.fullmatch(MEMORY_SIZE, value.strip(), flags=re.IGNORECASE) is None:
            raise ValueError(f"{value!r} is not a size such as 512MB, 2GiB or 50%")
        return value.strip()

    @field_validator("max_dead_letter_rate", mode="before")
    @classmethod
    def rate(cls, value: Any) -> Any:
        return parse_rate(value) if isinstance(value, str) else value

    @field_validator("max_new_quarantine", mode="before")
    @classmethod
    def limit(cls, value: Any) -> Any:
        return parse_limit(value) if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from the process's environment, or from `environ` instead of it."""
        token = ENVIRON.set(environ)
        try:
            return cls(postgres=PostgresSettings(), spark=SparkSettings())
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else ""
            variable = THRESHOLD_VARIABLES.get(name, f"ELT_{name.upper()}")
            raise InvalidSetting(f"{variable}: {error['msg'].removeprefix('Value error, ')}") from None
        finally:
            ENVIRON.reset(token)

    def dbt_vars(self) -> dict[str, Any]:
        """The dbt vars these settings set (none unless ELT_LOOKBACK_VERSIONS is set)."""
        return {} if self.lookback_versions is None else {"lookback_versions": self.lookback_versions}

    def with_thresholds(self, **thresholds: float | int | None) -> Settings:
        """These settings with `max_dead_letter_rate` / `max_new_quarantine` replaced (the command line's,
        which win over the environment), validated like the rest."""
        unknown = set(thresholds) - set(THRESHOLD_VARIABLES)
        if unknown:
            raise TypeError(f"not a threshold: {', '.join(sorted(unknown))}")
        try:
            return type(self).model_validate({**dict(self), **thresholds})
        except ValidationError as exc:
            raise InvalidSetting(str(exc)) from None

"""The harness's settings: one warehouse configuration that both dlt and dbt read (contract 1.4).

Source settings (base URL, token, database URL, bucket URL) are not here: the sources receive them
through dlt's own configuration resolution (`[sources.<name>]` in `.dlt/*.toml`, or environment
variables such as `SOURCES__SHOP_API__TOKEN`, which win).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

PROJECT_DIR = Path(__file__).resolve().parent.parent

Target = Literal["duckdb", "postgres"]


class PostgresSettings(BaseModel):
    """libpq's own variables; a missing one falls back to libpq's default, as psql would."""

    model_config = ConfigDict(frozen=True)

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


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: Target = "duckdb"
    duckdb_path: Path = PROJECT_DIR / "warehouse.duckdb"
    postgres: PostgresSettings = PostgresSettings()
    project_dir: Path = PROJECT_DIR
    # dlt's local working folder (pending load packages live here between a crash and the resume).
    state_dir: Path = PROJECT_DIR / ".elt"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        pg = {
            key: env[var]
            for key, var in (
                ("host", "PGHOST"),
                ("port", "PGPORT"),
                ("user", "PGUSER"),
                ("password", "PGPASSWORD"),
                ("database", "PGDATABASE"),
            )
            if env.get(var)
        }
        values: dict[str, object] = {"postgres": PostgresSettings(**pg)}
        if env.get("ELT_TARGET"):
            values["target"] = env["ELT_TARGET"]
        if env.get("ELT_DUCKDB_PATH"):
            values["duckdb_path"] = Path(env["ELT_DUCKDB_PATH"]).resolve()
        if env.get("ELT_PROJECT_DIR"):  # another copy of the dbt project (a fork's, a test's)
            values["project_dir"] = Path(env["ELT_PROJECT_DIR"]).resolve()
        if env.get("ELT_STATE_DIR"):
            values["state_dir"] = Path(env["ELT_STATE_DIR"]).resolve()
        return cls(**values)

    def pipelines_dir(self) -> Path:
        """One folder per target so a DuckDB and a PostgreSQL run never share pending packages."""
        where = self.duckdb_path.stem if self.target == "duckdb" else f"{self.postgres.host}_{self.postgres.dbname}"
        return self.state_dir / "pipelines" / self.target / where

    def dbt_env(self) -> dict[str, str]:
        """What `profiles.yml` reads; the harness passes it to the dbt subprocess."""
        env = {"ELT_TARGET": self.target, "ELT_DUCKDB_PATH": str(self.duckdb_path)}
        if self.target == "postgres":
            pg = self.postgres
            env.update(
                PGHOST=pg.host,
                PGPORT=str(pg.port),
                PGUSER=pg.user,
                PGPASSWORD=pg.password.get_secret_value(),
                PGDATABASE=pg.dbname,
            )
        return env

"""Least privilege on PostgreSQL: the roles `elt grants` creates or brings up to date.

Three NOLOGIN roles, named by environment variables (defaults in brackets); login users are granted them:

- the **loader** (`ELT_LOADER_ROLE` [elt_loader]): CONNECT, TEMPORARY and CREATE on the database, so dlt
  can create its `raw_<source>` (and `raw_<source>_staging`) schemas; it owns them and everything in
  them, and is granted nothing else.
- the **transformer** (`ELT_TRANSFORMER_ROLE` [elt_transformer]): the same on the database (dbt creates
  the schemas it lacks; `elt replay --dry-run` its scratch schema), USAGE and SELECT on every `raw_*`
  schema and table — today's by a grant, tomorrow's by the loader's default privileges — and owns
  `staging`, `analytics`, `quarantine` and `ops` with everything in them (the ops tables and function
  that dbt's on-run-start creates, the harness's reads of quarantine). The run ledger (`ops.elt_runs`,
  `ops.elt_run_sources`, `ops.elt_run_books`) is created here and the loader may read, insert and update
  it: `elt load` records its runs too —, and may read and insert `ops.dead_letter_resolutions`:
  `elt dead-letters replay` lands into raw as the loader and records what it resolved; nothing else in
  `ops`.
- the **reader** (`ELT_READER_ROLE` [elt_reader]): CONNECT, USAGE on `analytics` and SELECT on its
  tables; nothing in raw, staging, quarantine or ops. dbt's `grants` config on the marts
  (dbt_project.yml) grants SELECT to it on every table it builds, before the swap of a `--full-refresh`
  commits, so a reader never meets a table it may not read.

What a role creates must belong to the role, not to the login that happened to run the job (else the
next login of the same role could not rebuild it, and the loader's default privileges would not apply):
`--loader-user LOGIN` / `--transformer-user LOGIN` grant the role and make it the login's session role in
this database (`alter role LOGIN in database DB set role ROLE`); `--reader-user LOGIN` only grants it.

Idempotent: run it again at any time, e.g. after adding a source. Objects that exist already in those
schemas (a warehouse built before by another user) are handed to the role that writes them. The advisory
locks the loaders and the models take need no privilege. Run it as a superuser (it creates roles and
changes owners).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from psycopg2 import sql

from loaders.core.outcomes import CommandFailed, ExitCode
from loaders.core.settings import Settings
from loaders.ops.rejudge import PREVIEW_SCHEMA
from loaders.ops.runner import Result
from loaders.warehouse import dialect, ops_tables
from loaders.warehouse.locks import run_lock

ROLE_VARIABLES = {"loader": "ELT_LOADER_ROLE", "transformer": "ELT_TRANSFORMER_ROLE", "reader": "ELT_READER_ROLE"}
DEFAULT_ROLES = {"loader": "elt_loader", "transformer": "elt_transformer", "reader": "elt_reader"}
TRANSFORMER_SCHEMAS = ("staging", "analytics", "quarantine", "ops")
READER_SCHEMA = "analytics"
# Created and dropped by the transformer (`elt rejudge --dry-run`); one left behind by a crash is handed over.
TRANSFORMER_SCRATCH_SCHEMAS = (PREVIEW_SCHEMA,)
SESSION_ROLE_KINDS = ("loader", "transformer")
LEDGER_SCHEMA = ops_tables.SCHEMA
ROLE_OID = "(select oid from pg_roles where rolname = %s)"

RELATION_KEYWORDS = {
    "r": "table",
    "p": "table",
    "f": "foreign table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
}


class GrantsFailed(CommandFailed):
    """The roles or privileges could not be applied; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.GRANTS_FAILED)


def grants(settings: Settings, members: Mapping[str, Iterable[str]]) -> Result:
    """`elt grants`: the roles and privileges, idempotent (a warehouse without roles: nothing to do)."""
    warehouse = dialect(settings)
    if not warehouse.has_roles:
        return Result(ExitCode.OK, f"elt grants: {warehouse.name} has no roles or privileges; nothing to grant")
    with run_lock(settings):
        report = apply_grants(settings, Roles.from_env(), members)
    return Result(ExitCode.OK, report.describe())


@dataclass(frozen=True)
class Roles:
    loader: str
    transformer: str
    reader: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Roles:
        env = os.environ if environ is None else environ
        names = {kind: env.get(variable) or DEFAULT_ROLES[kind] for kind, variable in ROLE_VARIABLES.items()}
        if len(set(names.values())) != len(names):
            raise GrantsFailed(f"the three roles need three names, got {names} ({', '.join(ROLE_VARIABLES.values())})")
        return cls(**names)

    def items(self) -> list[tuple[str, str]]:
        return [("loader", self.loader), ("transformer", self.transformer), ("reader", self.reader)]


@dataclass
class GrantReport:
    database: str
    roles: Roles
    created: list[str] = field(default_factory=list)
    handed_over: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)

    def describe(self) -> str:
        roles = ", ".join(f"{kind} {name}" for kind, name in self.roles.items())
        parts = [f"elt grants: database {self.database}: {roles}"]
        parts.append(f"created {', '.join(self.created) or 'none'}")
        parts.append(f"objects handed to their writer {len(self.handed_over)}")
        if self.members:
            parts.append(f"members {', '.join(self.members)}")
        return "; ".join(parts)


def apply_grants(settings: Settings, roles: Roles, members: Mapping[str, Iterable[str]] | None = None) -> GrantReport:
    """Create the roles if missing and set every privilege above, in one transaction."""
    members = {kind: list(users) for kind, users in (members or {}).items()}
    session_logins = [user for kind in SESSION_ROLE_KINDS for user in members.get(kind, [])]
    if len(session_logins) != len(set(session_logins)):
        raise GrantsFailed("a login can act as the loader or as the transformer, not both")
    report = GrantReport(settings.postgres.dbname, roles)
    try:
        with dialect(settings).connect(read_only=False) as conn:
            conn.autocommit = False
            grants = _Grants(conn.cursor(), settings.postgres.dbname, roles, report)
            grants.run(members)
            conn.commit()
    except psycopg2.Error as exc:
        message = (exc.pgerror or str(exc)).strip().splitlines()[0]
        raise GrantsFailed(message) from None
    return report


class _Grants:
    def __init__(self, cursor: Any, database: str, roles: Roles, report: GrantReport) -> None:
        self.sql = sql
        self.cursor = cursor
        self.database = database
        self.roles = roles
        self.report = report

    def execute(self, statement: str, *identifiers: str) -> None:
        """`statement` with `{}` for each identifier, quoted."""
        ids = [self.sql.Identifier(name) for name in identifiers]
        self.cursor.execute(self.sql.SQL(statement).format(*ids))

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        self.cursor.execute(query, params or None)
        return list(self.cursor.fetchall())

    def run(self, members: Mapping[str, list[str]]) -> None:
        loader, transformer, reader = self.roles.loader, self.roles.transformer, self.roles.reader
        db = self.database
        # two `elt grants` at once would race on CREATE ROLE
        self.cursor.execute("select pg_advisory_xact_lock(hashtext('elt:grants'))")
        for _kind, name in self.roles.items():
            if not self.rows("select 1 from pg_roles where rolname = %s", name):
                self.execute("create role {} nologin", name)
                self.report.created.append(name)

        for role in (loader, transformer):
            self.execute("grant connect, temporary, create on database {} to {}", db, role)
        self.execute("grant connect on database {} to {}", db, reader)
        self.execute("revoke create on database {} from {}", db, reader)

        # raw_*: the loader's; the transformer reads every schema and table the loader has or will create
        for (schema,) in self.rows(r"select nspname from pg_namespace where nspname like %s order by 1", "raw\\_%"):
            self.hand_over(schema, loader)
            self.execute("grant usage on schema {} to {}", schema, transformer)
            self.execute("grant select on all tables in schema {} to {}", schema, transformer)
            self.execute("revoke all on schema {} from {}", schema, reader)
        self.execute("alter default privileges for role {} grant usage on schemas to {}", loader, transformer)
        self.execute("alter default privileges for role {} grant select on tables to {}", loader, transformer)

        # dbt's schemas: the transformer's, created now so the reader's USAGE on analytics can be granted
        for schema in TRANSFORMER_SCHEMAS:
            self.execute("create schema if not exists {} authorization {}", schema, transformer)
            if schema == LEDGER_SCHEMA:
                for table in ops_tables.ALL:  # the transformer's, handed over below
                    self.cursor.execute(table.ddl)
            self.hand_over(schema, transformer)
        # the harness's tables: every `elt` command writes the ledger, `elt load` as the loader too
        self.execute("grant usage on schema {} to {}", LEDGER_SCHEMA, loader)
        for table in ops_tables.ALL:
            self.execute(f"grant {table.loader_may} on {{}}.{{}} to {{}}", LEDGER_SCHEMA, table.name, loader)
        for (schema,) in self.rows(
            "select nspname from pg_namespace where nspname = any(%s)", list(TRANSFORMER_SCRATCH_SCHEMAS)
        ):
            self.hand_over(schema, transformer)
        self.execute("grant usage on schema {} to {}", READER_SCHEMA, reader)
        # tables built before the role existed; dbt's grants config keeps it on every rebuild from now on
        self.execute("grant select on all tables in schema {} to {}", READER_SCHEMA, reader)
        for schema in TRANSFORMER_SCHEMAS:
            if schema != READER_SCHEMA:
                self.execute("revoke all on schema {} from {}", schema, reader)

        for kind, users in members.items():
            role = getattr(self.roles, kind)
            for user in users:
                if not self.rows("select 1 from pg_roles where rolname = %s", user):
                    raise GrantsFailed(f"no role {user!r} to grant {role} to: create the login first")
                self.execute("grant {} to {}", role, user)
                if kind in SESSION_ROLE_KINDS:
                    # what it creates belongs to the role (see the module docstring)
                    self.execute("alter role {} in database {} set role = {}", user, db, role)
                self.report.members.append(f"{user}->{role}")

    def hand_over(self, schema: str, owner: str) -> None:
        """The schema, its relations and routines belong to `owner` (a no-op when they do already)."""
        if self.rows(
            "select 1 from pg_namespace where nspname = %s and nspowner <> " + ROLE_OID,
            schema,
            owner,
        ):
            self.execute("alter schema {} owner to {}", schema, owner)
            self.report.handed_over.append(schema)
        relations = self.rows(
            f"""
            select c.relname, c.relkind
            from pg_class as c
            join pg_namespace as n on n.oid = c.relnamespace
            where n.nspname = %s
              and c.relkind in ('r', 'p', 'f', 'v', 'm', 'S')
              and c.relowner <> {ROLE_OID}
              -- a sequence that belongs to a column follows its table
              and not (c.relkind = 'S' and exists (
                  select 1 from pg_depend as d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')
              ))
            order by c.relname
            """,
            schema,
            owner,
        )
        for name, kind in relations:
            self.execute(f"alter {RELATION_KEYWORDS[kind]} {{}}.{{}} owner to {{}}", schema, name, owner)
            self.report.handed_over.append(f"{schema}.{name}")
        routines = self.rows(
            f"""
            select p.proname, pg_get_function_identity_arguments(p.oid)
            from pg_proc as p
            join pg_namespace as n on n.oid = p.pronamespace
            where n.nspname = %s and p.proowner <> {ROLE_OID}
            order by 1, 2
            """,
            schema,
            owner,
        )
        for name, arguments in routines:
            # the argument list comes from the catalog, already in SQL syntax
            statement = self.sql.SQL(
                "alter routine {}.{}(" + arguments.replace("{", "{{").replace("}", "}}") + ") owner to {}"
            )
            self.cursor.execute(statement.format(*(self.sql.Identifier(x) for x in (schema, name, owner))))
            self.report.handed_over.append(f"{schema}.{name}({arguments})")

"""What the rest of the project knows of `app_db`: its two tables, how a dead letter lands again, its check."""

from __future__ import annotations

import dlt
import sqlalchemy as sa

from loaders.landing.spec import Check, ResourceSpec, SourceSpec, json_record
from loaders.sources.app_db import SOURCE, TABLES, AppDbError, app_db, connect
from loaders.sources.app_db.settings import FUTURE_VERSION_TOLERANCE_SECONDS


def check() -> Check:
    """Connect with the configured URL and find the contract's tables."""
    credentials = dlt.secrets.get("sources.app_db.credentials")
    if not credentials:
        return Check(SOURCE, False, "set SOURCES__APP_DB__CREDENTIALS (a SQLAlchemy URL)")
    try:
        engine = connect(str(credentials))
        tables = set(sa.inspect(engine).get_table_names())
    except AppDbError as exc:
        return Check(SOURCE, False, str(exc).removeprefix("app_db: "))
    except Exception as exc:  # the driver's message can repeat the URL: only its kind
        return Check(SOURCE, False, f"cannot connect ({type(exc).__name__})")
    missing = set(TABLES) - tables
    if missing:
        return Check(SOURCE, False, f"connected, but no table {', '.join(sorted(missing))}")
    return Check(SOURCE, True, f"connected; {' and '.join(TABLES)} are there")


SPEC = SourceSpec(
    SOURCE,
    app_db,
    tuple(
        ResourceSpec(table, model, key, json_record, cursor_tolerance_seconds=FUTURE_VERSION_TOLERANCE_SECONDS)
        for table, (model, key) in TABLES.items()
    ),
    check,
)

"""What the rest of the project knows of `refunds_files`: its resource, how a dead letter lands again, its
check."""

from __future__ import annotations

import json
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.common.storages.fsspec_filesystem import fsspec_from_config, glob_files

from loaders.landing.spec import Check, LandedRecord, ResourceSpec, SourceSpec
from loaders.sources.refunds_files import FILE_GLOB, SOURCE, SOURCE_FILE_COLUMN, refunds_files
from loaders.sources.refunds_files.records import Refund


def json_line(text: str, location: str, landed_record: LandedRecord) -> tuple[Any, dict[str, Any]] | str:
    """A refund's line parsed, with the file it came from (`refunds_x.jsonl line N`)."""
    try:
        return json.loads(text), {SOURCE_FILE_COLUMN: location.rsplit(" line ", 1)[0]}
    except ValueError as exc:
        return f"not JSON: {getattr(exc, 'msg', exc)}"


def check() -> Check:
    """List the configured folder."""
    bucket_url = dlt.config.get("sources.refunds_files.bucket_url")
    if not bucket_url:
        return Check(SOURCE, False, "set SOURCES__REFUNDS_FILES__BUCKET_URL")
    try:
        config = FilesystemConfiguration(bucket_url=str(bucket_url))
        client, _ = fsspec_from_config(config)
        if not client.isdir(config.bucket_url):
            return Check(SOURCE, False, f"{bucket_url}: no such folder")
        count = sum(1 for _ in glob_files(client, config.bucket_url, FILE_GLOB))
    except Exception as exc:
        return Check(SOURCE, False, f"{bucket_url}: {type(exc).__name__}")
    return Check(SOURCE, True, f"{bucket_url}: {count} file(s) matching {FILE_GLOB}")


SPEC = SourceSpec(
    SOURCE,
    refunds_files,
    (
        ResourceSpec(
            "refunds",
            Refund,
            "refund_id",
            json_line,
            extra_columns={SOURCE_FILE_COLUMN: pa.string()},
            dead_letter_identity="location",
        ),
    ),
    check,
)

"""What the rest of the project knows of `payments_files`: its resource, how a dead letter (a CSV line) lands
again, its check."""

from __future__ import annotations

import io
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.common.storages.fsspec_filesystem import fsspec_from_config, glob_files

from loaders.landing.spec import Check, LandedRecord, ResourceSpec, SourceSpec
from loaders.sources.payments_files import FILE_GLOB, SOURCE, SOURCE_FILE_COLUMN, payments_files
from loaders.sources.payments_files.helpers import read_csv_records
from loaders.sources.payments_files.records import PAYMENT_CSV_HEADER, Payment


def source_file(location: str) -> str:
    """The settlement file of a location `payments_YYYYMMDD_NN.csv line N`."""
    return location.rsplit(" line ", 1)[0]


def parse_csv_record(text: str, header: list[str]) -> dict[str, str] | str:
    """The fields of one CSV record under the file's header, or why it is not one (as the loader reads it)."""
    lines = io.StringIO(",".join(header) + "\n" + text).readlines()
    records = list(read_csv_records(line.encode("utf-8", "surrogatepass") for line in lines))
    if len(records) != 1:
        return f"the text holds {len(records)} CSV records, not one"
    record = records[0]
    return record.fields if record.fields is not None else (record.error or "unreadable")


def csv_record(text: str, location: str, landed_record: LandedRecord) -> tuple[Any, dict[str, Any]] | str:
    """A settlement line read under its file's header: the header of a row the loader landed from the same
    file (`_record` keeps the header's order), or the contract's when none of its rows landed."""
    name = source_file(location)
    landed = landed_record(SOURCE_FILE_COLUMN, name)
    record = parse_csv_record(text, list(landed) if landed else list(PAYMENT_CSV_HEADER))
    if isinstance(record, str):
        return record
    return record, {SOURCE_FILE_COLUMN: name}


def check() -> Check:
    """List the configured folder."""
    bucket_url = dlt.config.get("sources.payments_files.bucket_url")
    if not bucket_url:
        return Check(SOURCE, False, "set SOURCES__PAYMENTS_FILES__BUCKET_URL")
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
    payments_files,
    (
        ResourceSpec(
            "payments",
            Payment,
            "payment_id",
            csv_record,
            extra_columns={SOURCE_FILE_COLUMN: pa.string()},
            dead_letter_identity="location",
        ),
    ),
    check,
)

"""`refunds_files`: refunds as JSON lines dropped in a folder or any fsspec URL — the worked example of
adding a source (docs/runbook.md, "Add a source").

Files are taken by the shared manifest (loaders/landing/manifest.py): a new or re-delivered
`refunds_*.jsonl` is read whole, an unchanged one is not opened, and the manifest commits with the rows.
Each line is one refund; a line that is not a JSON object with a `refund_id` is a dead letter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.common.storages.fsspec_filesystem import fsspec_from_config
from dlt.sources.filesystem import FileItemDict, glob_files

from loaders.core.timestamps import parse_timestamp
from loaders.landing.batch import Batch, Tally, Window, as_window, raw_table_hints
from loaders.landing.manifest import Delivery, Manifest
from loaders.sources.refunds_files.records import Refund

SOURCE = "refunds_files"
FILE_GLOB = "refunds_*.jsonl"
SOURCE_FILE_COLUMN = "_source_file"


@dlt.source(name=SOURCE)
def refunds_files(
    bucket_url: str = dlt.config.value,
    file_glob: str = FILE_GLOB,
    start: datetime | None = None,
    end: datetime | None = None,
    tally: Tally | None = None,
) -> Any:
    """`start`/`end` (`elt backfill`): every file's refunds updated in `[start, end)`, manifest untouched."""
    window = as_window(start, end)
    tally = tally or Tally()

    @dlt.resource(name="refunds", **raw_table_hints("refund_id"))
    def refunds() -> Iterator[Any]:
        config = FilesystemConfiguration(bucket_url=bucket_url)
        fs_client, _ = fsspec_from_config(config)
        manifest = Manifest(dlt.current.resource_state() if window is None else {})
        listed = {file["relative_path"]: file for file in glob_files(fs_client, config.bucket_url, file_glob)}
        batch = Batch(
            SOURCE,
            "refunds",
            Refund,
            key="refund_id",
            extra_columns={SOURCE_FILE_COLUMN: pa.string()},
            dead_letter_identity="location",
            tally=tally,
        )
        for delivery in manifest.new_deliveries(listed.values(), datetime.now(UTC)):
            first_seq = manifest.next_seq
            with FileItemDict(listed[delivery.path], fs_client).open(mode="rb") as stream:
                last_line = yield from read_lines(stream, delivery, first_seq, batch, window)
            manifest.take(delivery, last_line)
        yield from batch.finish()

    return refunds


def read_lines(stream: Any, delivery: Delivery, first_seq: int, batch: Batch, window: Window | None) -> Iterator[Any]:
    """Land or dead-letter every line of one delivery; the last line number read."""
    last_line = 0
    for number, raw in enumerate(stream, start=1):
        last_line = number
        location = f"{delivery.name} line {number}"
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
            batch.dead_letter(text, location, f"invalid UTF-8 at byte {exc.start}", delivery.delivered_at)
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            batch.dead_letter(text, location, f"not JSON: {getattr(exc, 'msg', exc)}", delivery.delivered_at)
            continue
        if window is not None and not window.holds(version_of(record)):
            continue
        batch.add(record, text, location, delivery.delivered_at, first_seq + number, _source_file=delivery.name)
        yield from batch.flush()
    return last_line


def version_of(record: Any) -> datetime | None:
    return parse_timestamp(record.get("updated_at")) if isinstance(record, dict) else None

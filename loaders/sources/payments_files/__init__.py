"""`payments_files`: settlement CSVs dropped in a folder or any fsspec URL (contract 1.3).

Which files are read is decided by a manifest, not by a clock (loaders/landing/manifest.py). The manifest
lives in dlt's resource state, so it commits in the same load package as the rows it describes (a crash
before the commit leaves it, and the files, as they were):

- it maps each file's path (relative to the folder) to the identity of the delivery taken:
  `[size in bytes, modification time in µs]`, both from the one listing the run makes;
- a file whose path is not in the manifest, or whose identity differs (a re-delivery: overwritten in
  place, whatever its new modification time), is read whole; a file with the same identity is not
  opened. A file copied with an old modification time (`rsync -a`) is read; one stamped in the future
  holds nothing back. Entries are never dropped: a file removed and put back unchanged is not read
  again (touch it to have it read).

Size and modification time are what every fsspec listing gives in the same call, for thousands of
files; an etag is not given by local disks nor named alike by object stores, and a checksum would mean
reading every file each run. The blind spot: a re-delivery with the same size *and* the same
modification time is not noticed.

"Delivered last" (the contract's tie-break between rows of equal `payment_id` and `updated_at`) is the
order in which the loader took the deliveries, which `_delivered_at` then `_delivery_seq` state:

- deliveries first seen by a later run were delivered after those taken by earlier runs;
- among the deliveries first seen by the same run: by modification time, then by path;
- within a file: by line.

`_delivered_at` is the file's modification time kept within [the latest `_delivered_at` already taken,
the run's start]: the modification time for a file delivered normally, never earlier than a delivery
already taken (an old-mtime copy seen late counts as delivered after everything before it) nor later
than the run (a future mtime). `_delivery_seq` is the record's position in everything this loader has
taken from the folder (the manifest's `next_seq` when the delivery is taken, plus the line number), so
it alone orders every record ever taken, and dlt's merge keeps the latest of equal (payment_id,
`_version`) rows within a package. A re-delivered file's rows replace the versions they correct (raw
merges on (payment_id, `_version`)).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.common.storages.fsspec_filesystem import fsspec_from_config
from dlt.sources.filesystem import FileItemDict, glob_files

from loaders.core.timestamps import parse_timestamp
from loaders.landing.batch import Batch, Tally, Window, as_window, raw_table_hints
from loaders.landing.manifest import Delivery, Manifest
from loaders.sources.payments_files.helpers import COLUMNS_AT_ONCE_MAX_BYTES, read_csv_records, read_csv_table
from loaders.sources.payments_files.records import Payment

SOURCE = "payments_files"
FILE_GLOB = "payments_*.csv"
SOURCE_FILE_COLUMN = "_source_file"


class PaymentsFolderMissing(RuntimeError):
    """The configured local folder does not exist: the run fails, the manifest stays as it was."""


@dlt.source(name=SOURCE)
def payments_files(
    bucket_url: str = dlt.config.value,
    file_glob: str = FILE_GLOB,
    start: datetime | None = None,
    end: datetime | None = None,
    tally: Tally | None = None,
) -> Any:
    """`start`/`end` (`elt backfill`): every file's rows updated in `[start, end)`, manifest untouched.
    `tally` counts what the extraction hands to dlt."""
    window = as_window(start, end)
    tally = tally or Tally()

    @dlt.resource(name="payments", **raw_table_hints("payment_id"))
    def payments() -> Iterator[Any]:
        config = FilesystemConfiguration(bucket_url=bucket_url)
        fs_client, _ = fsspec_from_config(config)
        # A local folder that is not there is a wrong setting, not an empty delivery: fail before any state
        # moves. (An object store has no folders: an empty prefix is simply no delivery yet.)
        if config.is_local_filesystem and not fs_client.isdir(config.bucket_url):
            raise PaymentsFolderMissing(
                f"payments_files: the folder {bucket_url} does not exist (check SOURCES__PAYMENTS_FILES__BUCKET_URL)"
            )
        # a backfill takes every file as a first load would, in a manifest that is thrown away
        manifest = Manifest(dlt.current.resource_state() if window is None else {})
        started = datetime.now(UTC)
        listed = {file["relative_path"]: file for file in glob_files(fs_client, config.bucket_url, file_glob)}
        batch = Batch(
            SOURCE,
            "payments",
            Payment,
            key="payment_id",
            extra_columns={SOURCE_FILE_COLUMN: pa.string()},
            dead_letter_identity="location",
            tally=tally,
        )
        for delivery in manifest.new_deliveries(listed.values(), started):
            first_seq = manifest.next_seq
            file = FileItemDict(listed[delivery.path], fs_client)
            last_line = yield from read_file(file, delivery, first_seq, batch, window)
            manifest.take(delivery, last_line)
        yield from batch.finish()

    return payments


def read_file(
    file: FileItemDict, delivery: Delivery, first_seq: int, batch: Batch, window: Window | None = None
) -> Iterator[Any]:
    """Land or dead-letter every record of one delivery, or with a window only the records updated in it;
    returns the last line number read. Arrow's CSV reader takes the whole file where it reads it as CSV
    allows (`read_csv_table`), Python's csv module line by line where not."""
    with file.open(mode="rb") as stream:
        if file["size_in_bytes"] > COLUMNS_AT_ONCE_MAX_BYTES:
            last_line = read_lines(stream, delivery, first_seq, batch, window)
            yield from batch.flush()
            return last_line
        data = stream.read()
    parsed = read_csv_table(data)
    if parsed is None:
        last_line = read_lines(io.BytesIO(data), delivery, first_seq, batch, window)
    else:
        if window is None:
            for record in parsed.damaged:
                location = f"{delivery.name} line {record.line}"
                batch.dead_letter(record.raw_text, location, record.error or "unreadable", delivery.delivered_at)
        batch.add_table(
            parsed.table,
            pc.binary_join_element_wise(f"{delivery.name} line ", parsed.lines.cast(pa.string()), ""),
            delivery.delivered_at,
            pc.add(parsed.lines, first_seq),
            raw_texts=parsed.raw_texts,
            control_characters=parsed.control_characters,
            window=window,
            _source_file=delivery.name,
        )
        last_line = parsed.last_line
    yield from batch.flush()
    return last_line


def read_lines(stream: Any, delivery: Delivery, first_seq: int, batch: Batch, window: Window | None) -> int:
    """`read_file` record by record (Python's csv module): a file Arrow's reader does not take."""
    last_line = 0
    for record in read_csv_records(stream):
        last_line = max(last_line, record.line)
        location = f"{delivery.name} line {record.line}"
        if window is not None and (record.fields is None or not window.holds(version_of(record.fields))):
            continue
        if record.fields is None:
            batch.dead_letter(record.raw_text, location, record.error or "unreadable", delivery.delivered_at)
            continue
        batch.add(
            record.fields,
            record.raw_text,
            location,
            delivered_at=delivery.delivered_at,
            delivery_seq=first_seq + record.line,
            _source_file=delivery.name,
        )
    return last_line


def version_of(fields: dict[str, str]) -> datetime | None:
    return parse_timestamp(fields.get("updated_at"))

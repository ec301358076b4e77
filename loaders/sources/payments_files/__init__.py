"""`payments_files`: settlement CSVs dropped in a folder or any fsspec URL (contract 1.3).

The incremental cursor is the greatest file modification time already landed (each row carries its
file's mtime as `_delivered_at`): a new file, a late file and a re-delivered one (overwritten in place,
so newer) are read; a file not touched since is not. Files with exactly the cursor's mtime are read
again, and their rows merge onto themselves. Among rows of the same (payment_id, updated_at) the one
from the file delivered last wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.common.storages.fsspec_filesystem import fsspec_from_config
from dlt.sources.filesystem import FileItemDict, glob_files

from loaders.records import Payment
from loaders.sources.landing import Batch, raw_table_hints
from loaders.sources.payments_files.helpers import read_csv_records

SOURCE = "payments_files"
FILE_GLOB = "payments_*.csv"


@dlt.source(name=SOURCE)
def payments_files(bucket_url: str = dlt.config.value, file_glob: str = FILE_GLOB) -> Any:
    @dlt.resource(name="payments", **raw_table_hints("payment_id"))
    def payments(
        delivered=dlt.sources.incremental("_delivered_at", primary_key=()),
    ) -> Iterator[Any]:
        config = FilesystemConfiguration(bucket_url=bucket_url)
        fs_client, _ = fsspec_from_config(config)
        files = sorted(
            glob_files(fs_client, config.bucket_url, file_glob),
            key=lambda file: (file["modification_date"], file["file_name"]),
        )
        batch = Batch(
            SOURCE,
            "payments",
            Payment,
            key="payment_id",
            extra_columns={"_source_file": pa.string()},
            dead_letter_identity="location",
        )
        for file in files:
            if delivered.start_value is not None and file["modification_date"] < delivered.start_value:
                continue
            yield from read_file(FileItemDict(file, fs_client), batch)
        yield from batch.finish()

    return payments


def read_file(file: FileItemDict, batch: Batch) -> Iterator[Any]:
    name, delivered_at = file["file_name"], file["modification_date"]
    with file.open(mode="rb") as stream:
        for record in read_csv_records(stream):
            location = f"{name} line {record.line}"
            if record.fields is None:
                batch.dead_letter(record.raw_text, location, record.error or "unreadable", delivered_at)
                continue
            batch.add(
                record.fields,
                record.raw_text,
                location,
                delivered_at=delivered_at,
                delivery_seq=record.line,
                _source_file=name,
            )
    yield from batch.drain()

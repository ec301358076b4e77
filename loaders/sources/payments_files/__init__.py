"""`payments_files`: settlement CSVs dropped in a folder or any fsspec URL (contract 1.3).

Files are listed by dlt's filesystem source with an incremental cursor on their modification time:
a new file, a late file and a re-delivered file (overwritten in place, newer mtime) are all read; an
unchanged file is not. Each row's `_delivered_at` is its file's modification time, so among rows of
the same (payment_id, updated_at) the one from the file delivered last wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
from dlt.sources.filesystem import FileItemDict, filesystem

from loaders.records import Payment
from loaders.sources.landing import Batch, raw_table_hints
from loaders.sources.payments_files.helpers import read_csv_records

SOURCE = "payments_files"
FILE_GLOB = "payments_*.csv"


@dlt.source(name=SOURCE)
def payments_files(bucket_url: str = dlt.config.value, file_glob: str = FILE_GLOB) -> Any:
    files = filesystem(
        bucket_url=bucket_url,
        file_glob=file_glob,
        incremental=dlt.sources.incremental("modification_date"),
    )
    return files | payments


@dlt.transformer(name="payments", **raw_table_hints("payment_id"))
def payments(files: list[FileItemDict]) -> Iterator[Any]:
    batch = Batch(SOURCE, "payments", Payment, key="payment_id", extra_columns={"_source_file": pa.string()})
    for file in files:
        name = file["file_name"]
        with file.open(mode="rb") as stream:
            for record in read_csv_records(stream):
                location = f"{name} line {record.line}"
                if record.fields is None:
                    batch.dead_letter(
                        record.raw_text, location, record.error or "unreadable", file["modification_date"]
                    )
                    continue
                batch.add(
                    record.fields,
                    record.raw_text,
                    location,
                    delivered_at=file["modification_date"],
                    delivery_seq=record.line,
                    _source_file=name,
                )
        yield from batch.drain()
    yield from batch.finish()

"""Landing a batch of text columns with Arrow's kernels instead of record by record.

A source that reads its records as columns of text (the settlement files through Arrow's CSV reader, the
app database through its cursor's rows) hands `Batch.add_table` the whole batch. What the record path
(`Batch.add`) does to one record is done here to every column at once: the version parsed
(`parse_timestamps`), the record's JSON assembled from its columns, the key and the
references checked. A row whose text needs a judgment these kernels do not make — a key that is missing,
empty, long or has blanks at its ends, a long reference, a control character anywhere (JSON escapes it, a
NUL is unstorable) — goes through the record path instead, so both paths land the same rows and
dead-letter the same records (tests/loaders/test_landing.py compares them on generated batches).
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from loaders.core.timestamps import parse_timestamp

# A key taken as it is: printable ASCII at both ends (nothing `str.strip` would remove), and short.
PLAIN_KEY = "^[!-~]$|^[!-~].*[!-~]$"
CONTROL_CHARACTER = r"[\x00-\x1f]"


def record_path_mask(
    table: pa.Table, key: str, references: list[str], longest: int, control_characters: pa.Array | None = None
) -> pa.Array:
    """True for the rows the record path must judge (see the module's docstring). `control_characters`: the
    rows holding one, when the source found them in its raw text already (a file's bytes, in one pass)."""
    keys = table.column(key) if key in table.column_names else pa.nulls(table.num_rows, pa.string())
    plain = pc.and_(pc.match_substring_regex(keys, PLAIN_KEY), pc.less_equal(pc.utf8_length(keys), longest))
    mask = pc.invert(pc.fill_null(plain, False))
    for name in references:
        if name in table.column_names:
            mask = pc.or_(mask, pc.fill_null(pc.greater(pc.utf8_length(table.column(name)), longest), False))
    if control_characters is not None:
        mask = pc.or_(mask, control_characters)
    else:
        for column in table.columns:
            mask = pc.or_(mask, pc.fill_null(pc.match_substring_regex(column, CONTROL_CHARACTER), False))
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


def record_json(table: pa.Table, spaced: bool = False) -> pa.Array:
    """Each row as the JSON object of its columns in their order, text or null, exactly as
    `loaders.landing.records.to_json` writes the same record as a dict (no control characters: see
    `record_path_mask`): orjson's compact text, or with `spaced` the standard library's (`", "` and `": "`),
    which it falls back to for a record whose field names are a subclass of str (SQLAlchemy's row keys)."""
    if table.num_columns == 0:
        return pa.repeat(pa.scalar("{}"), table.num_rows)
    colon, comma = (": ", ", ") if spaced else (":", ",")
    members = []
    for name in table.column_names:
        column = table.column(name).cast(pa.string())
        if pc.any(pc.match_substring(column, '"')).as_py() or pc.any(pc.match_substring(column, "\\")).as_py():
            column = pc.replace_substring(pc.replace_substring(column, "\\", "\\\\"), '"', '\\"')
        label = json.dumps(name, ensure_ascii=False) + colon
        members.append(pc.fill_null(pc.binary_join_element_wise(f'{label}"', column, '"', ""), f"{label}null"))
    joined = pc.binary_join_element_wise("{", pc.binary_join_element_wise(*members, comma), "}", "")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


# The shape nearly every version arrives in: `YYYY-MM-DD HH:MM:SS` (or `T`), UTC (optionally `Z`), year 0001+.
# `parse_timestamps` reads these with Arrow's kernels and every other text with `parse_timestamp`.
_COMMON_SHAPE = (
    "^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9][Zz]?$"
)


def parse_timestamps(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`parse_timestamp` of every text of an Arrow string array, as `timestamp[us, UTC]` (null where it
    gives None), for a loader's whole batch at once.

    Texts of the common shape are parsed by Arrow's `strptime`, kept only where its day is the text's:
    `strptime` rolls 2024-02-30 over to March 1st, which the grammar refuses.
    Every other non-null text goes through `parse_timestamp` (tests/loaders/test_landing.py compares both
    on generated texts)."""
    texts = pa.chunked_array([texts]).combine_chunks() if isinstance(texts, pa.Array) else texts.combine_chunks()
    texts = texts.cast(pa.string())
    common = pc.fill_null(pc.match_substring_regex(texts, _COMMON_SHAPE), False)
    normal = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(texts, 0, 10), pc.utf8_slice_codeunits(texts, 11, 19), " "
    )
    normal = pc.if_else(common, normal, None)
    parsed = pc.strptime(normal, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
    # The grammar's ranges leave only the day to roll over (2024-02-30 becomes March 1st): same day, same date.
    exact = pc.fill_null(pc.equal(pc.day(parsed), pc.cast(pc.utf8_slice_codeunits(normal, 8, 10), pa.int64())), False)
    result = pc.if_else(exact, parsed, None).cast(pa.timestamp("us", tz="UTC"))
    others = pc.and_(pc.invert(common), pc.is_valid(texts))
    if not pc.any(others).as_py():
        return result
    # rare: only the texts off the common shape are parsed one by one
    others_texts = pc.filter(texts, others).to_pylist()
    parsed_others = pa.array([parse_timestamp(text) for text in others_texts], type=result.type)
    return pc.replace_with_mask(result, others, parsed_others)

"""Row batches -> JSONL, CSV or Parquet bytes, streamed with constant memory."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring  # the C string escaper; keeps non-ASCII as is


from .params import KTO_COLUMNS, RAW_COLUMNS, encode_json

PARQUET_GROUP_ROWS = 50_000  # rows per Parquet row group: the memory held at once

# Each takes batches of rows and yields (bytes, rows in them).


_RAW_LINE = (
    '{"generation_id":%d,"round":%d,"checkpoint_id":%s,"annotator":%s,"desirable":%s,"reason":%s,'
    '"created_at":"%s","updated_at":"%s"}'
)


def _raw_lines(batch: list[tuple]) -> list[str]:
    # Written by hand for speed: the free text goes through the json module's C string escaper;
    # the timestamps are ISO text formatted by the database.
    escape = encode_basestring
    return [
        _RAW_LINE % (g, r, "null" if c is None else c, escape(a), "true" if d else "false", escape(reason), ca, ua)
        for g, r, c, a, d, reason, ca, ua in batch
    ]


def _kto_line(row: tuple) -> str:
    prompt, completion, label = row
    return '{"prompt":%s,"completion":%s,"label":%s}' % (
        encode_basestring(prompt) if isinstance(prompt, str) else encode_json(prompt),
        encode_basestring(completion) if isinstance(completion, str) else encode_json(completion),
        "true" if label else "false",
    )


def jsonl_chunks(batches: Iterable[list[tuple]], view: str) -> Iterator[tuple[bytes, int]]:
    for batch in batches:
        lines = list(map(_kto_line, batch)) if view == "kto" else _raw_lines(batch)
        lines.append("")
        yield "\n".join(lines).encode(), len(batch)


def _kto_csv_row(row: tuple) -> tuple:
    # Chat messages as JSON text; booleans as true/false, like JSON.
    prompt, completion, label = row
    return (
        prompt if isinstance(prompt, str) else encode_json(prompt),
        completion if isinstance(completion, str) else encode_json(completion),
        "true" if label else "false",
    )


def _raw_csv_rows(batch: list[tuple]) -> list[tuple]:
    # csv writes None (no checkpoint) as an empty field; booleans as true/false, like JSON.
    return [(g, r, c, a, "true" if d else "false", reason, ca, ua) for g, r, c, a, d, reason, ca, ua in batch]


def csv_chunks(batches: Iterable[list[tuple]], view: str) -> Iterator[tuple[bytes, int]]:
    """RFC 4180 CSV: every field with a quote, comma or line break is quoted, quotes doubled."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(KTO_COLUMNS if view == "kto" else RAW_COLUMNS)
    for batch in batches:
        writer.writerows(map(_kto_csv_row, batch) if view == "kto" else _raw_csv_rows(batch))
        yield buffer.getvalue().encode(), len(batch)
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # header only: an export with no rows
        yield buffer.getvalue().encode(), 0


class _DrainableSink(io.RawIOBase):
    """A write-only file whose bytes can be taken out as they come; tell() keeps counting from
    the start, which the Parquet writer needs for the offsets in its footer."""

    def __init__(self):
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def parquet_schema(view: str, chat: bool):
    import pyarrow as pa

    if view == "raw":
        return pa.schema([
            ("generation_id", pa.int64()),
            ("round", pa.int32()),
            ("checkpoint_id", pa.int64()),
            ("annotator", pa.string()),
            ("desirable", pa.bool_()),
            ("reason", pa.string()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("updated_at", pa.timestamp("us", tz="UTC")),
        ])
    text = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])) if chat else pa.string()
    return pa.schema([("prompt", text), ("completion", text), ("label", pa.bool_())])


def _arrow_column(values, field):
    import pyarrow as pa

    if pa.types.is_timestamp(field.type):  # ISO text from the database, parsed by Arrow
        return pa.array(values, pa.string()).cast(field.type)
    return pa.array(values, type=field.type)


def _regrouped(batches: Iterable[list[tuple]], size: int) -> Iterator[list[tuple]]:
    group: list[tuple] = []
    for batch in batches:
        group.extend(batch)
        while len(group) >= size:
            yield group[:size]
            group = group[size:]
    if group:
        yield group


def parquet_chunks(batches: Iterable[list[tuple]], schema) -> Iterator[tuple[bytes, int]]:
    """Parquet written one row group at a time; each group's bytes leave as soon as written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = _DrainableSink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for group in _regrouped(batches, PARQUET_GROUP_ROWS):
            columns = [_arrow_column(values, field) for values, field in zip(zip(*group), schema)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=len(group))
            yield sink.drain(), len(group)
    finally:
        writer.close()
    yield sink.drain(), 0

"""Reading import files row by row: JSONL, CSV, TXT and Parquet.

Each reader yields (line, row) where row is a dict of raw values and line is the 1-based line on
which the record starts (for Parquet: the 1-based row number). Readers only decode; what the
values mean is checked in services/imports.py.
"""
import codecs
import csv
import json
from collections.abc import Iterator
from pathlib import PurePath

from .errors import InvalidInput

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "txt", ".parquet": "parquet"}


class ImportFileError(InvalidInput):
    """A file that cannot be imported; `line` (1-based, None for the file as a whole) and `field`
    say where."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message, field=field)
        self.line = line
        self.detail = message


def format_for(filename: str) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ImportFileError(f"Unsupported file type '{suffix or filename}'; use one of {known}.", field="file")
    return FORMATS[suffix]


def read_rows(binary_file, fmt: str) -> Iterator[tuple[int, dict]]:
    readers = {"jsonl": _jsonl_rows, "csv": _csv_rows, "txt": _txt_rows, "parquet": _parquet_rows}
    return readers[fmt](binary_file)


def _text_lines(binary_file) -> Iterator[tuple[int, str]]:
    """(line number, text) pairs, decoded one line at a time so an encoding error names its line.
    Line endings are kept (csv needs them); a UTF-8 byte-order mark is dropped."""
    for number, raw in enumerate(iter(binary_file.readline, b""), start=1):
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportFileError("The line is not valid UTF-8 text.", line=number) from None


def _jsonl_rows(binary_file):
    for number, line in _text_lines(binary_file):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"Not valid JSON ({exc.msg}).", line=number) from None
        if not isinstance(row, dict):
            raise ImportFileError("Each line must be a JSON object.", line=number)
        yield number, row


def _txt_rows(binary_file):
    for number, line in _text_lines(binary_file):
        if line.strip():
            yield number, {"prompt": line.rstrip("\r\n")}


# Cells that hold JSON in a CSV file: a message list for the prompt or a completion.
_CSV_JSON_FIELDS = {"prompt", "completion", "chosen", "rejected"}
_CSV_BOOL_FIELDS = {"label", "desirable"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _csv_value(name: str, value: str, line: int):
    if value == "":
        return None  # an empty cell is a missing value
    if name in _CSV_BOOL_FIELDS:
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImportFileError("Must be true or false.", line=line, field=name)
    if name in _CSV_JSON_FIELDS and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value  # text that happens to start with "[", e.g. "[INST] ..."
        if isinstance(parsed, list):
            return parsed
    return value


def _csv_rows(binary_file):
    lines = _text_lines(binary_file)
    physical = (line for _, line in lines)
    reader = csv.reader(physical)
    try:
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip().lower() for name in header]
        if len(set(names)) != len(names):
            raise ImportFileError("The header repeats a column name.", line=1)
        previous_end = reader.line_num
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(names):
                raise ImportFileError(
                    f"{len(cells)} values but the header has {len(names)} columns.", line=start
                )
            yield start, {name: _csv_value(name, cell, start) for name, cell in zip(names, cells)}
    except csv.Error as exc:
        raise ImportFileError(f"Not valid CSV ({exc}).", line=reader.line_num) from None


def _parquet_rows(binary_file):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(binary_file)
    except (pa.ArrowException, OSError, ValueError):
        raise ImportFileError("Not a readable Parquet file.", field="file") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=1000):
        for row in batch.to_pylist():
            number += 1
            yield number, {str(key).lower(): value for key, value in row.items()}

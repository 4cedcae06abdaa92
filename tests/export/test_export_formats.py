"""Each format reads back unchanged in the tool people use for it: json, csv, pyarrow."""
import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feedback.models import Label
from feedback.services import export
from feedback.services.export import ExportSpec, export_stream, pseudonym

TRICKY = 'Line one, with a comma\nline "two" with quotes\r\nand <script>alert(1)</script> — ünïcode ✓'


def body(project, **spec) -> bytes:
    return b"".join(export_stream(project, ExportSpec(**spec)))


@pytest.fixture
def tricky(project, annotators, add_item):
    a, b, _ = annotators
    add_item({a: True, b: True}, prompt=TRICKY, completion=TRICKY, reasons={a: TRICKY})
    add_item({a: False}, prompt="plain", completion="short")
    return annotators


def test_jsonl_kto_rows_parse_line_by_line(project, tricky):
    lines = body(project, format="jsonl").decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"prompt": TRICKY, "completion": TRICKY, "label": True},
        {"prompt": "plain", "completion": "short", "label": False},
    ]


def test_jsonl_raw_rows_carry_every_column(project, tricky):
    rows = [json.loads(line) for line in body(project, format="jsonl", view="raw").decode().splitlines()]
    assert len(rows) == 3
    assert list(rows[0]) == list(export.RAW_COLUMNS)
    assert rows[0]["reason"] == TRICKY and rows[0]["annotator"] == pseudonym(tricky[0].pk)
    assert rows[0]["desirable"] is True and rows[0]["checkpoint_id"] is None
    assert rows[0]["created_at"].endswith("Z") and "T" in rows[0]["created_at"]


@pytest.mark.parametrize("view", ["kto", "raw"])
def test_csv_round_trips_multiline_text_through_the_csv_module(project, tricky, view):
    reader = csv.DictReader(io.StringIO(body(project, format="csv", view=view).decode(), newline=""))
    rows = list(reader)
    if view == "kto":
        assert reader.fieldnames == ["prompt", "completion", "label"]
        assert rows[0] == {"prompt": TRICKY, "completion": TRICKY, "label": "true"}
        assert rows[1]["label"] == "false"
    else:
        assert reader.fieldnames == list(export.RAW_COLUMNS)
        assert rows[0]["reason"] == TRICKY
        assert rows[0]["checkpoint_id"] == "" and rows[0]["desirable"] == "true"
        assert len(rows) == 3


def test_csv_chat_prompts_are_json_text(project, annotators, add_item):
    messages = [{"role": "user", "content": 'Say "x",\nthen y'}]
    add_item({annotators[0]: True}, prompt=messages, completion="x\ny")
    [row] = csv.DictReader(io.StringIO(body(project, format="csv").decode(), newline=""))
    assert json.loads(row["prompt"]) == messages
    assert json.loads(row["completion"]) == [{"role": "assistant", "content": "x\ny"}]


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))


def test_parquet_raw_has_typed_columns(project, tricky):
    table = read_parquet(body(project, format="parquet", view="raw"))
    schema = table.schema
    assert schema.field("generation_id").type == pa.int64()
    assert schema.field("round").type == pa.int32()
    assert schema.field("checkpoint_id").type == pa.int64()
    assert schema.field("desirable").type == pa.bool_()
    assert schema.field("reason").type == pa.string()
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    rows = table.to_pylist()
    stored = Label.objects.order_by("generation_id", "id").values_list("created_at", "updated_at")
    assert [(row["created_at"], row["updated_at"]) for row in rows] == list(stored)
    assert rows[0]["reason"] == TRICKY and rows[0]["desirable"] is True and rows[0]["checkpoint_id"] is None
    assert [row["desirable"] for row in rows] == [True, True, False]


def test_parquet_kto_text_and_chat_forms(project, annotators, add_item):
    add_item({annotators[0]: True}, prompt=TRICKY, completion=TRICKY)
    table = read_parquet(body(project, format="parquet"))
    assert table.schema.field("prompt").type == pa.string()
    assert table.schema.field("label").type == pa.bool_()
    assert table.to_pylist() == [{"prompt": TRICKY, "completion": TRICKY, "label": True}]

    add_item({annotators[0]: False}, prompt=[{"role": "user", "content": "Hi"}], completion="Yo")
    table = read_parquet(body(project, format="parquet"))
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    assert table.schema.field("prompt").type == pa.list_(message)
    assert table.to_pylist()[1] == {
        "prompt": [{"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Yo"}],
        "label": False,
    }


def test_parquet_is_written_in_row_groups_that_stream_out(project, annotators, add_item, monkeypatch):
    monkeypatch.setattr(export.encoders, "PARQUET_GROUP_ROWS", 2)
    monkeypatch.setattr(export.rows, "CHUNK_ROWS", 3)
    for i in range(7):
        add_item({annotators[0]: i % 2 == 0}, completion=f"c{i}")
    chunks = list(export_stream(project, ExportSpec(format="parquet")))
    assert len(chunks) >= 4  # bytes leave per row group, not at the end
    data = b"".join(chunks)
    assert pq.ParquetFile(pa.BufferReader(data)).num_row_groups == 4
    assert [row["completion"] for row in read_parquet(data).to_pylist()] == [f"c{i}" for i in range(7)]


def test_jsonl_and_csv_stream_in_chunks(project, annotators, add_item, monkeypatch):
    monkeypatch.setattr(export.rows, "CHUNK_ROWS", 2)
    for i in range(5):
        add_item({annotators[0]: True}, completion=f"c{i}")
    assert len(list(export_stream(project, ExportSpec(format="jsonl")))) == 3
    assert len(list(export_stream(project, ExportSpec(format="csv", view="raw")))) == 3
    lines = b"".join(export_stream(project, ExportSpec(format="jsonl"))).decode().splitlines()
    assert [json.loads(line)["completion"] for line in lines] == [f"c{i}" for i in range(5)]


@pytest.mark.parametrize("view", ["kto", "raw"])
def test_empty_exports_are_valid_files(project, view):
    assert body(project, format="jsonl", view=view) == b""
    header = body(project, format="csv", view=view).decode()
    assert header.strip() == ",".join(export.KTO_COLUMNS if view == "kto" else export.RAW_COLUMNS)
    assert read_parquet(body(project, format="parquet", view=view)).num_rows == 0


def test_abandoning_a_stream_ends_its_transaction(project, annotators, add_item, monkeypatch):
    # A client that disconnects mid-download closes the generator: the cursor's transaction
    # (a savepoint inside the test's own) must end with it.
    from django.db import connection

    monkeypatch.setattr(export.rows, "CHUNK_ROWS", 1)
    for i in range(3):
        add_item({annotators[0]: True}, completion=f"c{i}")
    before = list(connection.savepoint_ids)
    stream = export_stream(project, ExportSpec(view="raw"))
    next(stream)
    assert len(connection.savepoint_ids) == len(before) + 1
    stream.close()
    assert connection.savepoint_ids == before

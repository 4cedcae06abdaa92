"""`manage.py export_dataset`: the same export as the API, written to a file on the server."""
import json

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from feedback.services.export import ExportSpec, export_stream


@pytest.fixture
def labelled(project, annotators, add_item):
    a, b, c = annotators
    add_item({a: True, b: True, c: False}, completion="kept\nwith a newline")
    add_item({a: True, b: False}, completion="tie")
    add_item({a: False}, completion="no", round_number=2)


def test_writes_the_same_bytes_as_the_service(project, labelled, tmp_path):
    out = tmp_path / "kto.jsonl"
    call_command("export_dataset", "--project", str(project.pk), "--out", str(out), "--no-progress")
    assert out.read_bytes() == b"".join(export_stream(project, ExportSpec()))
    assert [json.loads(line)["completion"] for line in out.read_text().splitlines()] == ["kept\nwith a newline", "no"]
    assert not (tmp_path / "kto.jsonl.partial").exists()


def test_project_by_name_with_filters_and_parquet(project, labelled, tmp_path, capsys):
    out = tmp_path / "raw.parquet"
    call_command(
        "export_dataset", "--project", project.name, "--format", "parquet", "--view", "raw",
        "--round", "1", "--annotator", "ann1", "--annotator", "ann2", "--min-labels", "2",
        "--annotator-names", "--out", str(out), "--no-progress",
    )
    rows = pq.read_table(out).to_pylist()
    assert [(row["annotator"], row["desirable"]) for row in rows] == [
        ("ann1", True), ("ann2", True), ("ann1", True), ("ann2", False)
    ]
    assert "Wrote 4 rows" in capsys.readouterr().err


def test_progress_bar_counts_the_rows(project, labelled, tmp_path, capsys):
    call_command("export_dataset", "--project", str(project.pk), "--view", "raw", "--out", str(tmp_path / "x.csv"),
                 "--format", "csv")
    err = capsys.readouterr().err
    assert "Wrote 6 rows" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "xml"], "--format must be one of jsonl, csv, parquet"),
        (["--min-agreement", "2"], "--min-agreement must be from 0 to 1"),
        (["--round", "5"], "--round: this project has no round 5"),
        (["--from", "tomorrow"], "--from must be an ISO date"),
    ],
)
def test_bad_options_stop_with_a_message_and_no_file(project, labelled, tmp_path, args, message):
    out = tmp_path / "never.jsonl"
    with pytest.raises(CommandError, match=message):
        call_command("export_dataset", "--project", str(project.pk), "--out", str(out), *args)
    assert not out.exists()


def test_unknown_project(db, tmp_path):
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("export_dataset", "--project", "nope", "--out", str(tmp_path / "x"))

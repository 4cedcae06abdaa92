"""Imports through the service: the four row shapes in every format, dedup, limits, and all or nothing."""
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback.models import Generation, Label, LabelEvent, Prompt, Round
from feedback.services.import_formats import ImportFileError
from feedback.services.imports import import_file
from feedback.services.limits import COMPLETION_MAX_CHARS, PROMPT_MAX_CHARS, REASON_MAX_CHARS

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


@pytest.fixture
def run(project, admin_user):
    def run_import(name, content: bytes, target=None):
        return import_file(target or project, SimpleUploadedFile(name, content), user=admin_user, filename=name)

    return run_import


def stored():
    return Prompt.objects.count(), Generation.objects.count(), Label.objects.count()


def test_jsonl_takes_all_four_row_shapes(run, project, admin_user):
    result = run("rows.jsonl", jsonl(
        {"prompt": "Only a prompt"},
        {"prompt": "Say hi", "completion": "hi"},
        {"prompt": CHAT, "completion": "blue", "label": True, "reason": "correct"},
        {"prompt": "Say bye", "completion": [{"role": "assistant", "content": "bye"}], "desirable": False},
        {"prompt": "Pick one", "chosen": "good answer", "rejected": "bad answer"},
    ))
    assert (result.rows, result.round) == (5, 1)
    assert (result.prompts_created, result.generations_created, result.labels_created) == (5, 5, 4)
    chat_prompt = Prompt.objects.get(messages__isnull=False)
    assert chat_prompt.content == CHAT and chat_prompt.text == ""
    assert Prompt.objects.filter(text="Only a prompt", generations__isnull=True).exists()
    labels = {label.generation.text: (label.desirable, label.reason) for label in Label.objects.all()}
    assert labels == {"blue": (True, "correct"), "bye": (False, ""), "good answer": (True, ""),
                      "bad answer": (False, "")}
    # Pre-labelled rows are the importing admin's labels, with history.
    assert set(Label.objects.values_list("annotator", flat=True)) == {admin_user.pk}
    assert LabelEvent.objects.filter(action="created", annotator=admin_user).count() == 4
    assert set(Generation.objects.values_list("source", flat=True)) == {"imported"}
    assert Round.objects.get(project=project).number == 1


def test_reimporting_deduplicates_prompts_and_generations(run):
    content = jsonl({"prompt": "A", "completion": "a1"}, {"prompt": "A", "completion": "a2"},
                    {"prompt": CHAT, "completion": "c", "label": True})
    first = run("one.jsonl", content)
    assert (first.prompts_created, first.prompts_deduplicated) == (2, 1)
    before = stored()
    second = run("two.jsonl", content)
    assert (second.prompts_created, second.prompts_deduplicated) == (0, 3)
    assert (second.generations_created, second.generations_deduplicated) == (0, 3)
    assert (second.labels_created, second.labels_updated) == (0, 0)
    assert stored() == before
    # A changed label on a known generation updates the importer's label instead of adding one.
    third = run("three.jsonl", jsonl({"prompt": CHAT, "completion": "c", "label": False}))
    assert (third.labels_created, third.labels_updated) == (0, 1)
    assert list(Label.objects.values_list("desirable", flat=True)) == [False]


def test_chat_prompts_dedupe_on_role_and_content_only(run):
    with_extra_keys = [dict(message, name="x") for message in CHAT]
    run("a.jsonl", jsonl({"prompt": CHAT}))
    result = run("b.jsonl", jsonl({"prompt": with_extra_keys}))
    assert result.prompts_deduplicated == 1


def test_csv_with_json_messages_multiline_cells_and_text_labels(run):
    content = (
        'prompt,completion,label,reason,source\n'
        '"Line one\nline two","ok, fine",true,,web\n'
        f'"{json.dumps(CHAT).replace(chr(34), chr(34) * 2)}",blue,No,"off, ""topic""",web\n'
        '"[INST] not json [/INST]",sure,,,web\n'
    ).encode()
    result = run("rows.csv", content)
    assert (result.rows, result.labels_created, result.ignored_fields) == (3, 2, ["source"])
    assert Prompt.objects.filter(text="Line one\nline two").exists()
    assert Prompt.objects.filter(messages=CHAT).exists()
    assert Prompt.objects.filter(text="[INST] not json [/INST]").exists()
    label = Label.objects.get(generation__text="blue")
    assert (label.desirable, label.reason) == (False, 'off, "topic"')
    assert not Label.objects.filter(generation__text="sure").exists()


def test_csv_error_names_the_starting_line_of_a_multiline_record(run):
    content = b'prompt,completion,label\n"two\nlines",x,true\nthird,y,maybe\n'
    with pytest.raises(ImportFileError) as error:
        run("rows.csv", content)
    assert (error.value.line, error.value.field) == (4, "label")
    assert stored() == (0, 0, 0)


def test_txt_is_one_prompt_per_line(run):
    result = run("prompts.txt", "Write a haiku\n\nÉcris un poème\r\nWrite a haiku\n".encode())
    assert (result.prompts_created, result.prompts_deduplicated, result.generations_created) == (2, 1, 0)
    assert set(Prompt.objects.values_list("text", flat=True)) == {"Write a haiku", "Écris un poème"}


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_parquet_with_typed_columns_and_chat_prompts(run):
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    table = pa.table({
        "prompt": pa.array([CHAT, [{"role": "user", "content": "Hi"}]], type=pa.list_(message)),
        "completion": ["blue", "hello"],
        "label": pa.array([True, False], type=pa.bool_()),
    })
    result = run("kto.parquet", parquet_bytes(table))
    assert (result.rows, result.labels_created) == (2, 2)
    assert Prompt.objects.filter(messages=CHAT).exists()


def test_parquet_paired_rows_and_row_numbers_in_errors(run):
    good = parquet_bytes(pa.table({"prompt": ["p1"], "chosen": ["yes"], "rejected": ["no"]}))
    assert run("pairs.parquet", good).labels_created == 2
    bad = parquet_bytes(pa.table({"prompt": ["p2", "p3"], "chosen": ["yes", "yes"], "rejected": ["no", None]}))
    with pytest.raises(ImportFileError) as error:
        run("pairs.parquet", bad)
    assert (error.value.line, error.value.field) == (2, "rejected")


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"completion": "no prompt"}, "prompt", "Required"),
        ({"prompt": "   "}, "prompt", "empty"),
        ({"prompt": 7}, "prompt", "string or a list"),
        ({"prompt": [{"role": "user"}]}, "prompt[0].content", "string"),
        ({"prompt": [{"content": "x"}]}, "prompt[0].role", "role"),
        ({"prompt": []}, "prompt", "empty"),
        ({"prompt": "p", "completion": 3}, "completion", "string"),
        ({"prompt": "p", "completion": "c", "label": "yes"}, "label", "true or false"),
        ({"prompt": "p", "completion": "c", "label": True, "desirable": False}, "label", "disagree"),
        ({"prompt": "p", "label": True}, "completion", "needs a"),
        ({"prompt": "p", "chosen": "c"}, "rejected", "Required"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "rejected", "Same text"),
        ({"prompt": "p", "chosen": "c", "rejected": "r", "label": True}, "label", "paired"),
        ({"prompt": "p", "completion": [{"role": "user", "content": "x"}]}, "completion", "assistant"),
        ({"prompt": "p", "completion": "c", "reason": "why"}, "reason", "only kept with a label"),
        ({"prompt": "x" * (PROMPT_MAX_CHARS + 1)}, "prompt", f"{PROMPT_MAX_CHARS}"),
        ({"prompt": "p", "completion": "x" * (COMPLETION_MAX_CHARS + 1)}, "completion", f"{COMPLETION_MAX_CHARS}"),
        ({"prompt": "p", "completion": "c", "label": True, "reason": "x" * (REASON_MAX_CHARS + 1)}, "reason",
         f"{REASON_MAX_CHARS}"),
    ],
)
def test_a_bad_row_rejects_the_whole_file_naming_line_and_field(run, row, field, message):
    content = jsonl({"prompt": "good", "completion": "fine", "label": True}, {"prompt": "also good"}) + b"\n" + jsonl(row)
    with pytest.raises(ImportFileError) as error:
        run("rows.jsonl", content)
    assert (error.value.line, error.value.field) == (4, field)  # the blank line 3 still counts
    assert message in str(error.value) and "line 4" in str(error.value)
    assert stored() == (0, 0, 0)
    assert not Round.objects.exists()


def test_a_bad_row_after_many_chunks_still_stores_nothing(run, monkeypatch):
    from feedback.services import imports

    monkeypatch.setattr(imports, "CHUNK_ROWS", 3)
    rows = [{"prompt": f"p{index}", "completion": "c", "label": True} for index in range(10)]
    with pytest.raises(ImportFileError) as error:
        run("rows.jsonl", jsonl(*rows, {"prompt": "p", "completion": None, "label": True}))
    assert error.value.line == 11
    assert stored() == (0, 0, 0) and not LabelEvent.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("rows.jsonl", b'{"prompt": "a"}\n{"prompt": \n', 2, "Not valid JSON"),
        ("rows.jsonl", b'{"prompt": "a"}\n["a list"]\n', 2, "JSON object"),
        ("rows.jsonl", b'{"prompt": "a"}\n{"prompt": "\xff"}\n', 2, "UTF-8"),
        ("rows.csv", b'prompt,completion\na,b,c\n', 2, "header has 2 columns"),
        ("rows.csv", b'prompt,prompt\na,b\n', 1, "repeats"),
        ("rows.jsonl", b"", None, "no rows"),
        ("rows.parquet", b"not parquet at all", None, "Parquet"),
        ("rows.xlsx", b"whatever", None, "Unsupported file type"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(run, name, content, line, message):
    with pytest.raises(ImportFileError) as error:
        run(name, content)
    assert error.value.line == line
    assert message in str(error.value)
    assert stored() == (0, 0, 0)


def test_file_size_limit(run, settings):
    settings.IMPORT_MAX_BYTES = 100
    with pytest.raises(ImportFileError, match="larger than the limit of 100 bytes") as error:
        run("rows.jsonl", jsonl(*[{"prompt": f"prompt number {index}"} for index in range(10)]))
    assert error.value.field == "file"


def test_generations_go_into_the_latest_open_round_or_a_new_one(run, project):
    Round.objects.create(project=project, number=1, status=Round.Status.CLOSED)
    Round.objects.create(project=project, number=2, status=Round.Status.OPEN)
    assert run("a.jsonl", jsonl({"prompt": "p", "completion": "c"})).round == 2
    Round.objects.filter(number=2).update(status=Round.Status.CLOSED)
    assert run("b.jsonl", jsonl({"prompt": "p", "completion": "c"})).round == 3
    assert Generation.objects.filter(round__number=3, text="c").exists()


def test_a_prompts_only_file_opens_no_round(run, project):
    # Otherwise the first round generated from these prompts would be round 2, after an empty one.
    result = run("prompts.txt", b"first prompt\nsecond prompt\n")
    assert (result.prompts_created, result.round) == (2, None)
    assert not Round.objects.filter(project=project).exists()


def test_accepts_django_files_and_plain_binary_files(project, admin_user, tmp_path):
    from django.core.files import File

    path = tmp_path / "items.jsonl"
    path.write_bytes(jsonl({"prompt": "a", "completion": "b"}))
    with path.open("rb") as handle:
        assert import_file(project, File(handle, name=path.name), user=admin_user).generations_created == 1
    with path.open("rb") as handle:
        assert import_file(project, handle, user=admin_user, filename="x.jsonl").generations_deduplicated == 1

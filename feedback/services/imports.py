"""Importing prompts, generations and labels from a file (JSONL, CSV, TXT or Parquet).

Row shapes (extra columns are ignored and reported):
- {"prompt"}: a prompt, for rounds to generate from;
- {"prompt", "completion"}: an imported generation to label;
- {"prompt", "completion", "label": true|false} (TRL's unpaired KTO form; "desirable" is a
  synonym of "label"; an optional "reason"): a pre-labelled generation;
- {"prompt", "chosen", "rejected"} (paired preference): one desirable and one undesirable generation.
"prompt" is a string or a list of {"role", "content"} messages; a completion may also be a list
holding one assistant message (TRL's conversational form). In CSV a message list is a JSON cell.

Pre-labelled rows are recorded as labels by the importing user (with "created" events), so they
count towards labels_per_item like any annotator's label, and they can be exported and audited.

All or nothing: the whole file is read and written inside one transaction; the first bad row
raises ImportFileError naming its line and field, and nothing is stored. Prompts are deduplicated
per project, generations per round (same prompt and text); the result counts both.
"""
from dataclasses import dataclass, field
from itertools import islice

from django.conf import settings
from django.db import transaction

from feedback.models import Generation, Label, LabelEvent, Project, Prompt, Round, prompt_hash

from .import_formats import ImportFileError, format_for, read_rows
from .limits import COMPLETION_MAX_CHARS, PROMPT_MAX_CHARS, PROMPT_MAX_MESSAGES, REASON_MAX_CHARS, ROLE_MAX_CHARS
from .queue import SERVED_ROUND_STATUSES

KNOWN_FIELDS = {"prompt", "completion", "label", "desirable", "reason", "chosen", "rejected"}
CHUNK_ROWS = 2000


@dataclass
class ImportRecord:
    line: int
    prompt: str | list
    completions: list[tuple[str, bool | None, str]]  # (text, label or None, reason)


@dataclass
class ImportResult:
    rows: int = 0
    round: int | None = None
    prompts_created: int = 0
    prompts_deduplicated: int = 0
    generations_created: int = 0
    generations_deduplicated: int = 0
    labels_created: int = 0
    labels_updated: int = 0
    ignored_fields: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- checking one row


def _message_list(value, line: int, name: str) -> list[dict]:
    if not value:
        raise ImportFileError("A message list must not be empty.", line=line, field=name)
    if len(value) > PROMPT_MAX_MESSAGES:
        raise ImportFileError(f"At most {PROMPT_MAX_MESSAGES} messages.", line=line, field=name)
    messages = []
    for index, message in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(message, dict):
            raise ImportFileError('Each message must be an object with "role" and "content".', line=line, field=where)
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role.strip() or len(role) > ROLE_MAX_CHARS:
            raise ImportFileError(f'"role" must be a non-empty string of at most {ROLE_MAX_CHARS} characters.',
                                  line=line, field=f"{where}.role")
        if not isinstance(content, str):
            raise ImportFileError('"content" must be a string.', line=line, field=f"{where}.content")
        messages.append({"role": role.strip(), "content": content})  # only the two keys: stable dedup hashes
    return messages


def _prompt(value, line: int):
    if isinstance(value, list):
        messages = _message_list(value, line, "prompt")
        if sum(len(message["content"]) for message in messages) > PROMPT_MAX_CHARS:
            raise ImportFileError(f"At most {PROMPT_MAX_CHARS} characters in all.", line=line, field="prompt")
        return messages
    if not isinstance(value, str):
        raise ImportFileError("Must be a string or a list of messages.", line=line, field="prompt")
    if not value.strip():
        raise ImportFileError("Must not be empty.", line=line, field="prompt")
    if len(value) > PROMPT_MAX_CHARS:
        raise ImportFileError(f"At most {PROMPT_MAX_CHARS} characters.", line=line, field="prompt")
    return value


def _completion(value, line: int, name: str) -> str:
    if isinstance(value, list):  # TRL's conversational form: [{"role": "assistant", "content": ...}]
        messages = _message_list(value, line, name)
        if len(messages) != 1 or messages[0]["role"] != "assistant":
            raise ImportFileError("A completion given as messages must be one assistant message.",
                                  line=line, field=name)
        value = messages[0]["content"]
    if not isinstance(value, str):
        raise ImportFileError("Must be a string.", line=line, field=name)
    if not value.strip():
        raise ImportFileError("Must not be empty.", line=line, field=name)
    if len(value) > COMPLETION_MAX_CHARS:
        raise ImportFileError(f"At most {COMPLETION_MAX_CHARS} characters.", line=line, field=name)
    return value


def _label(row: dict, line: int) -> bool | None:
    label, synonym = row.get("label"), row.get("desirable")
    if label is not None and synonym is not None and label != synonym:
        raise ImportFileError('"label" and "desirable" disagree.', line=line, field="label")
    value = label if label is not None else synonym
    if value is not None and not isinstance(value, bool):
        raise ImportFileError("Must be true or false.", line=line, field="label" if label is not None else "desirable")
    return value


def _reason(value, line: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImportFileError("Must be a string.", line=line, field="reason")
    if len(value.strip()) > REASON_MAX_CHARS:
        raise ImportFileError(f"At most {REASON_MAX_CHARS} characters.", line=line, field="reason")
    return value.strip()


def parse_row(line: int, row: dict) -> ImportRecord:
    """Check one raw row and say what it holds; ImportFileError names the line and field."""
    if row.get("prompt") is None:
        raise ImportFileError("Required.", line=line, field="prompt")
    prompt = _prompt(row["prompt"], line)
    label = _label(row, line)
    reason = _reason(row.get("reason"), line)
    paired = row.get("chosen") is not None or row.get("rejected") is not None
    if paired:
        for name in ("chosen", "rejected"):
            if row.get(name) is None:
                raise ImportFileError(f'Required with "{"rejected" if name == "chosen" else "chosen"}".',
                                      line=line, field=name)
        for name in ("completion", "label", "desirable"):
            if row.get(name) is not None:
                raise ImportFileError('Not allowed in a paired row ("chosen" and "rejected").', line=line, field=name)
        completions = [
            (_completion(row["chosen"], line, "chosen"), True, reason),
            (_completion(row["rejected"], line, "rejected"), False, reason),
        ]
        if completions[0][0] == completions[1][0]:
            raise ImportFileError('Same text as "chosen".', line=line, field="rejected")
    elif row.get("completion") is not None:
        completions = [(_completion(row["completion"], line, "completion"), label, reason)]
    else:
        if label is not None:
            raise ImportFileError('A label needs a "completion" to label.', line=line, field="completion")
        completions = []
    if reason and all(label is None for _, label, _ in completions):
        raise ImportFileError("A reason is only kept with a label.", line=line, field="reason")
    return ImportRecord(line=line, prompt=prompt, completions=completions)


# ---------------------------------------------------------------------------- writing


def _target_round(project: Project) -> Round:
    """The project's latest round; a new one when there is none or the latest takes no labels."""
    latest = Round.objects.filter(project=project).order_by("-number").first()
    if latest is not None and latest.status in SERVED_ROUND_STATUSES:
        return latest
    number = 1 if latest is None else latest.number + 1
    return Round.objects.create(project=project, number=number, status=Round.Status.OPEN)


class _Writer:
    """Writes checked records in chunks, remembering what this file already created."""

    def __init__(self, project: Project, user):
        self.project, self.user = project, user
        self._round: Round | None = None
        self.prompt_ids: dict[str, int] = {}  # content hash -> prompt id
        self.generation_ids: dict[tuple[int, str], int] = {}  # (prompt id, text) -> generation id
        self.result = ImportResult()

    @property
    def round(self) -> Round:
        # Resolved on first use: a prompts-only file opens no round, so the first generation
        # round sampled from those prompts is round 1.
        if self._round is None:
            self._round = _target_round(self.project)
            self.result.round = self._round.number
        return self._round

    def write(self, records: list[ImportRecord]) -> None:
        self.result.rows += len(records)
        prompt_ids = self._prompts(records)
        labelled = self._generations(records, prompt_ids)
        self._labels(labelled)

    def _prompts(self, records):
        hashes = [prompt_hash(record.prompt) for record in records]
        unknown = set(hashes) - self.prompt_ids.keys()
        self.prompt_ids.update(
            Prompt.objects.filter(project=self.project, content_hash__in=unknown).values_list("content_hash", "pk")
        )
        new = {}
        for content_hash, record in zip(hashes, records):
            if content_hash in self.prompt_ids or content_hash in new:
                self.result.prompts_deduplicated += 1
                continue
            is_chat = isinstance(record.prompt, list)
            new[content_hash] = Prompt(
                project=self.project,
                text="" if is_chat else record.prompt,
                messages=record.prompt if is_chat else None,
                content_hash=content_hash,  # bulk_create skips save(), which usually sets it
            )
        for prompt in Prompt.objects.bulk_create(new.values()):
            self.prompt_ids[prompt.content_hash] = prompt.pk
        self.result.prompts_created += len(new)
        return [self.prompt_ids[content_hash] for content_hash in hashes]

    def _generations(self, records, prompt_ids):
        """Create the generations; returns [(generation id, label, reason)] for labelled ones."""
        if not any(record.completions for record in records):
            return []
        for pk, prompt_id, text in Generation.objects.filter(round=self.round, prompt_id__in=set(prompt_ids)).values_list(
            "pk", "prompt_id", "text"
        ):
            self.generation_ids.setdefault((prompt_id, text), pk)
        new: dict[tuple[int, str], Generation] = {}
        wanted = []
        for record, prompt_id in zip(records, prompt_ids):
            for text, label, reason in record.completions:
                key = (prompt_id, text)
                if key in self.generation_ids or key in new:
                    self.result.generations_deduplicated += 1
                else:
                    new[key] = Generation(prompt_id=prompt_id, round=self.round, text=text,
                                          source=Generation.Source.IMPORTED)
                wanted.append((key, label, reason))
        for key, generation in zip(new, Generation.objects.bulk_create(new.values())):
            self.generation_ids[key] = generation.pk
        self.result.generations_created += len(new)
        return [(self.generation_ids[key], label, reason) for key, label, reason in wanted if label is not None]

    def _labels(self, labelled):
        if not labelled:
            return
        existing = {
            label.generation_id: label
            for label in Label.objects.filter(generation_id__in={g for g, _, _ in labelled}, annotator=self.user)
        }
        created, changed = {}, {}
        for generation_id, desirable, reason in labelled:
            label = existing.get(generation_id) or created.get(generation_id)
            if label is None:
                created[generation_id] = Label(generation_id=generation_id, annotator=self.user,
                                               desirable=desirable, reason=reason)
            elif (label.desirable, label.reason) != (desirable, reason):
                label.desirable, label.reason = desirable, reason
                if label.pk is not None:
                    changed[generation_id] = label
        Label.objects.bulk_create(created.values())
        # auto_now does not fire in bulk_update, so updated_at is set by save() one by one (rare path).
        for label in changed.values():
            label.save(update_fields=["desirable", "reason", "updated_at"])
        events = [
            LabelEvent(label=label, generation_id=label.generation_id, annotator=self.user, action=action,
                       desirable=label.desirable, reason=label.reason)
            for action, labels in ((LabelEvent.Action.CREATED, created), (LabelEvent.Action.UPDATED, changed))
            for label in labels.values()
        ]
        LabelEvent.objects.bulk_create(events)
        self.result.labels_created += len(created)
        self.result.labels_updated += len(changed)


# Room for the multipart boundary and headers around the file in a request body.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def check_request_size(content_length: int) -> None:
    """Refuse an upload from its Content-Length, before the body is read and spooled to disk."""
    if content_length > settings.IMPORT_MAX_BYTES + MULTIPART_OVERHEAD_BYTES:
        raise ImportFileError(f"The file is larger than the limit of {settings.IMPORT_MAX_BYTES} bytes.", field="file")


def _file_size(uploaded_file) -> int:
    size = getattr(uploaded_file, "size", None)
    if size is None:
        position = uploaded_file.tell()
        size = uploaded_file.seek(0, 2)
        uploaded_file.seek(position)
    return size


def _chunks(iterable, size):
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def import_file(project: Project, uploaded_file, *, user, filename: str | None = None) -> ImportResult:
    """Import every row of `uploaded_file` (a binary file object) into `project`, or nothing.

    The format follows the file name's extension (.jsonl/.ndjson, .csv, .txt, .parquet).
    Generations go into the project's latest round (round 1 is created when there is none, and a
    new round when the latest is closed or failed); a file of prompts only opens no round.
    Raises ImportFileError.
    """
    filename = filename or getattr(uploaded_file, "name", "") or ""
    fmt = format_for(filename)
    limit = settings.IMPORT_MAX_BYTES
    if _file_size(uploaded_file) > limit:
        raise ImportFileError(f"The file is larger than the limit of {limit} bytes.", field="file")
    ignored: set[str] = set()

    def records():
        for line, row in read_rows(uploaded_file, fmt):
            ignored.update(key for key in row if key not in KNOWN_FIELDS)
            yield parse_row(line, row)

    with transaction.atomic():
        writer = _Writer(project, user)
        for chunk in _chunks(records(), CHUNK_ROWS):
            writer.write(chunk)
        if writer.result.rows == 0:
            raise ImportFileError("The file has no rows.", field="file")
    writer.result.ignored_fields = sorted(ignored)
    return writer.result

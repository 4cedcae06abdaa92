"""Labelled data out: which rows an export holds (selected and aggregated in SQL) and how they are
streamed as JSONL, CSV or Parquet with constant memory.

Two views:
- ``kto``: one row per generation with its majority label, ``{"prompt", "completion", "label"}``,
  the unpaired preference form TRL's KTOTrainer reads. Ties are left out. When any selected
  prompt is a chat prompt the whole export uses TRL's conversational form (prompt = list of
  messages, completion = ``[{"role": "assistant", ...}]``; a plain-text prompt then becomes one
  user message) because TRL decides the form from the first row only.
- ``raw``: one row per label, grouped by generation, annotators pseudonymous unless names are
  asked for.

Filters select labels (rounds, annotators, created_at window); majorities and agreement are
computed over the selected labels only, so what is filtered is what is counted.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from datetime import timezone as dt_timezone
from json.encoder import encode_basestring  # the C string escaper; keeps non-ASCII as is

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import CharField, Count, F, Func, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import slugify

from feedback.models import Generation, Label, Project, Prompt

FORMATS = ("jsonl", "csv", "parquet")
VIEWS = ("kto", "raw")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
KTO_COLUMNS = ("prompt", "completion", "label")
RAW_COLUMNS = (
    "generation_id", "round", "checkpoint_id", "annotator", "desirable", "reason", "created_at", "updated_at",
)
PARAMETERS = (
    "format", "view", "round", "annotator", "from", "to", "min_agreement", "unanimous", "min_labels",
    "annotator_names",
)
# Rows per server-side cursor fetch and per streamed chunk. Measured on the 1M-label bench:
# 500-2000 run fastest (a batch stays in CPU cache); 2000 keeps fetch round trips few when the
# database is across a network. Memory stays flat at any size.
CHUNK_ROWS = 2000
PARQUET_GROUP_ROWS = 50_000
# Share-of-majority comparisons run in SQL floats; this keeps 0.7 * 10 >= 7 true.
AGREEMENT_EPSILON = 1e-9
_TRUE = {"1", "true", "yes", "on"}
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_FALSE = {"0", "false", "no", "off"}


class ExportError(ValueError):
    """A bad export parameter; the message names it and says what is accepted."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class ExportSpec:
    format: str = "jsonl"
    view: str = "kto"
    rounds: tuple[int, ...] = ()
    annotator_ids: tuple[int, ...] = ()
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # inclusive
    min_agreement: float | None = None  # share of selected labels agreeing with the majority
    unanimous: bool = False
    min_labels: int = 1  # selected labels a generation needs to be exported
    annotator_names: bool = False  # raw view: usernames instead of pseudonyms

    @property
    def filters_agreement(self) -> bool:
        return self.min_agreement is not None or self.unanimous or self.min_labels > 1


# --- parameters --------------------------------------------------------------------------------


def _values(params, name: str) -> list[str]:
    """All values of a parameter, repeatable and comma-separated, blanks dropped (an HTML form
    sends empty fields)."""
    raw = params.getlist(name) if hasattr(params, "getlist") else params.get(name, [])
    if isinstance(raw, str):
        raw = [raw]
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def _single(params, name: str) -> str | None:
    values = _values(params, name)
    if len(values) > 1:
        raise ExportError(f"'{name}' takes one value, got {len(values)}.", field=name)
    return values[0] if values else None


def _flag(params, name: str) -> bool:
    value = _single(params, name)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ExportError(f"'{name}' must be 1 or 0, got {value!r}.", field=name)


def _moment(value: str, name: str, *, end_of_day: bool) -> datetime:
    """An ISO date or datetime; a bare date means the start (``from``) or the end (``to``) of that
    day, and a datetime without offset is read in the server's time zone."""
    try:
        # Date first: Python's fromisoformat would read a bare date as midnight.
        day = parse_date(value)
        moment = None if day else parse_datetime(value)
    except ValueError:  # well-formed but impossible, e.g. 2025-02-30
        moment = day = None
    if moment is None and day is None:
        raise ExportError(f"'{name}' must be an ISO date or datetime (e.g. 2025-01-31), got {value!r}.", field=name)
    if moment is None:
        moment = datetime.combine(day, time.max if end_of_day else time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


def _whole_number(value: str, name: str, *, what: str) -> int:
    # Bounded so an absurd number is a 400, not a database overflow.
    if not value.isdecimal() or not 1 <= int(value) <= 2**31 - 1:
        raise ExportError(f"'{name}' must be {what}, got {value!r}.", field=name)
    return int(value)


def pseudonym(user_id: int) -> str:
    """A stable pseudonymous annotator id: an HMAC of the user id keyed by SECRET_KEY, so it
    cannot be reversed or recomputed without the key and stays the same across exports."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"prospect-annotator:{user_id}".encode(), hashlib.sha256)
    return "a_" + digest.hexdigest()[:16]


def _project_annotator_ids(project: Project) -> set[int]:
    members = set(project.memberships.values_list("user_id", flat=True))
    labellers = Label.objects.filter(generation__round__project=project).values_list("annotator_id", flat=True)
    return members | set(labellers.distinct())


def _resolve_annotators(project: Project, values: list[str]) -> tuple[int, ...]:
    """Annotators by user id, pseudonym (a_…) or username; each must belong to the project."""
    if not values:
        return ()
    known = _project_annotator_ids(project)
    by_pseudonym = {pseudonym(user_id): user_id for user_id in known}
    usernames = dict(get_user_model().objects.filter(pk__in=known).values_list("username", "pk"))
    resolved = []
    for value in values:
        user_id = usernames.get(value) or by_pseudonym.get(value)
        if user_id is None and value.isdecimal() and int(value) in known:
            user_id = int(value)
        if user_id is None:
            raise ExportError(
                f"'annotator': no annotator {value!r} in this project (give a user id, username or pseudonym).",
                field="annotator",
            )
        resolved.append(user_id)
    return tuple(sorted(set(resolved)))


def _resolve_rounds(project: Project, values: list[str]) -> tuple[int, ...]:
    numbers = {_whole_number(value, "round", what="round numbers (1, 2, …)") for value in values}
    missing = numbers - set(project.rounds.filter(number__in=numbers).values_list("number", flat=True))
    if missing:
        raise ExportError(f"'round': this project has no round {', '.join(map(str, sorted(missing)))}.", field="round")
    return tuple(sorted(numbers))


def parse_export_params(project: Project, params: Mapping) -> ExportSpec:
    """Validate query parameters (a QueryDict, or a dict of lists from the command line) into an
    ExportSpec; raises ExportError with a message fit for a 400."""
    unknown = sorted(set(params.keys()) - set(PARAMETERS))
    if unknown:
        raise ExportError(f"Unknown parameter {unknown[0]!r}; accepted: {', '.join(PARAMETERS)}.", field=unknown[0])
    fmt = (_single(params, "format") or "jsonl").lower()
    if fmt not in FORMATS:
        raise ExportError(f"'format' must be one of {', '.join(FORMATS)}, got {fmt!r}.", field="format")
    view = (_single(params, "view") or "kto").lower()
    if view not in VIEWS:
        raise ExportError(f"'view' must be one of {', '.join(VIEWS)}, got {view!r}.", field="view")

    created_from = _single(params, "from")
    created_to = _single(params, "to")
    created_from = _moment(created_from, "from", end_of_day=False) if created_from else None
    created_to = _moment(created_to, "to", end_of_day=True) if created_to else None
    if created_from and created_to and created_from > created_to:
        raise ExportError("'from' must not be after 'to'.", field="from")

    min_agreement = _single(params, "min_agreement")
    if min_agreement is not None:
        try:
            min_agreement = float(min_agreement)
        except ValueError:
            message = f"'min_agreement' must be a number from 0 to 1, got {min_agreement!r}."
            raise ExportError(message, field="min_agreement") from None
        if not 0 <= min_agreement <= 1:
            raise ExportError(f"'min_agreement' must be from 0 to 1, got {min_agreement}.", field="min_agreement")

    min_labels = _single(params, "min_labels")
    min_labels = _whole_number(min_labels, "min_labels", what="a whole number >= 1") if min_labels else 1

    annotator_names = _flag(params, "annotator_names")
    if annotator_names and view != "raw":
        raise ExportError("'annotator_names' applies to view=raw only.", field="annotator_names")

    return ExportSpec(
        format=fmt,
        view=view,
        rounds=_resolve_rounds(project, _values(params, "round")),
        annotator_ids=_resolve_annotators(project, _values(params, "annotator")),
        created_from=created_from,
        created_to=created_to,
        min_agreement=min_agreement,
        unanimous=_flag(params, "unanimous"),
        min_labels=min_labels,
        annotator_names=annotator_names,
    )


def export_filename(project: Project, spec: ExportSpec, *, now: datetime | None = None) -> str:
    stamp = (now or timezone.now()).astimezone(dt_timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = slugify(project.name)[:60] or "project"
    return f"{name}-{project.pk}-{spec.view}-{stamp}.{spec.format}"


# --- selection (SQL) ---------------------------------------------------------------------------


class IsoTimestamp(Func):
    """A timestamp as ISO 8601 text in UTC, formatted by the database: far cheaper than building
    a datetime per value in Python only to print it again."""

    output_field = CharField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra):
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Django keeps SQLite datetimes as UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]".
        return self.as_sql(compiler, connection, template="replace(%(expressions)s, ' ', 'T') || 'Z'", **extra)


def _label_conditions(spec: ExportSpec) -> dict:
    conditions = {}
    if spec.annotator_ids:
        conditions["annotator_id__in"] = spec.annotator_ids
    if spec.created_from:
        conditions["created_at__gte"] = spec.created_from
    if spec.created_to:
        conditions["created_at__lte"] = spec.created_to
    return conditions


def _agreement_condition(spec: ExportSpec, *, exclude_ties: bool) -> Q:
    """Conditions on per-generation counts n (selected labels) and d (desirable among them)."""
    condition = Q(n__gte=spec.min_labels)
    if exclude_ties:
        condition &= ~Q(n=F("d") * 2)
    if spec.unanimous:
        condition &= Q(d=0) | Q(d=F("n"))
    if spec.min_agreement is not None:
        share = spec.min_agreement
        condition &= Q(d__gte=F("n") * share - AGREEMENT_EPSILON) | Q(d__lte=F("n") * (1 - share) + AGREEMENT_EPSILON)
    return condition


def _selected_labels(project: Project, spec: ExportSpec) -> QuerySet:
    labels = Label.objects.filter(generation__round__project=project, **_label_conditions(spec))
    if spec.rounds:
        labels = labels.filter(generation__round__number__in=spec.rounds)
    return labels


def _per_generation_counts(labels: QuerySet) -> QuerySet:
    """GROUP BY generation in SQL: n selected labels, d of them desirable."""
    return labels.order_by().values("generation_id").annotate(n=Count("id"), d=Count("id", filter=Q(desirable=True)))


def majority_queryset(project: Project, spec: ExportSpec) -> QuerySet:
    """(generation_id, n, d) per generation with a majority, aggregated in SQL, ties and
    generations failing the agreement filters left out. Only integers are grouped; the texts
    are joined on afterwards (_kto_query)."""
    return (
        _per_generation_counts(_selected_labels(project, spec))
        .filter(_agreement_condition(spec, exclude_ties=True))
        .order_by("generation_id")
        .values_list("generation_id", "n", "d")
    )


def labels_queryset(project: Project, spec: ExportSpec) -> QuerySet:
    """One row per selected label as plain tuples (no model instances)."""
    labels = _selected_labels(project, spec)
    if spec.filters_agreement:
        agreeing = (
            _per_generation_counts(labels)
            .filter(_agreement_condition(spec, exclude_ties=False))
            .values("generation_id")
        )
        labels = labels.filter(generation_id__in=agreeing)
    annotator = "annotator__username" if spec.annotator_names else "annotator_id"
    # By generation (all votes on an item together), then label: deterministic, and PostgreSQL
    # streams it from the generation indexes without sorting the whole result first.
    return labels.order_by("generation_id", "id").annotate(
        created_iso=IsoTimestamp("created_at"), updated_iso=IsoTimestamp("updated_at")
    ).values_list(
        "generation_id", "generation__round__number", "generation__checkpoint_id", annotator,
        "desirable", "reason", "created_iso", "updated_iso",
    )


def uses_chat_form(project: Project, spec: ExportSpec) -> bool:
    """Whether the kto export is conversational: any selected prompt is a chat prompt."""
    return _selected_labels(project, spec).filter(generation__prompt__messages__isnull=False).exists()


def count_rows(project: Project, spec: ExportSpec) -> int:
    """Rows the export will hold (the command's progress bar total)."""
    if spec.view == "kto":
        return majority_queryset(project, spec).count()
    return labels_queryset(project, spec).count()


# --- rows ----------------------------------------------------------------------------------------
# Row sources yield lists of tuples (one list per cursor fetch), so the encoders work a chunk at a
# time and per-row Python stays minimal.


def _text(value) -> str:
    return value if isinstance(value, str) else "" if value is None else _encode_json(value)


def _messages(messages: list) -> list[dict]:
    # TRL's conversational form: role and content per message as strings, nothing else, so
    # every row has the same shape (Parquet's typed struct needs that too).
    return [{"role": _text(m.get("role")), "content": _text(m.get("content"))} for m in messages]


def _fetch_batches(queryset: QuerySet) -> Iterator[list[tuple]]:
    """The query's rows, CHUNK_ROWS at a time, from a server-side cursor. Inside a transaction
    PostgreSQL streams the cursor; outside one (WITH HOLD) it would materialise the whole
    result before the first row."""
    with transaction.atomic(using=queryset.db):
        yield from _batched(queryset.iterator(chunk_size=CHUNK_ROWS), CHUNK_ROWS)


def _kto_query(project: Project, spec: ExportSpec) -> tuple[str, list]:
    """The majorities (GROUP BY generation, integers only) joined to their prompt and completion
    texts, ordered by generation: one streaming statement."""
    majorities, params = majority_queryset(project, spec).order_by().query.sql_with_params()
    quote = connection.ops.quote_name
    generation, prompt = quote(Generation._meta.db_table), quote(Prompt._meta.db_table)
    sql = (
        f"SELECT p.text, p.messages, g.text, m.n, m.d FROM ({majorities}) m "
        f"JOIN {generation} g ON g.id = m.generation_id JOIN {prompt} p ON p.id = g.prompt_id "
        "ORDER BY m.generation_id"
    )
    return sql, list(params)


def kto_batches(project: Project, spec: ExportSpec, *, chat: bool | None = None) -> Iterator[list[tuple]]:
    """(prompt, completion, label) per generation; chat says whether to use the conversational
    form (found out when not given)."""
    if chat is None:
        chat = uses_chat_form(project, spec)
    sql, params = _kto_query(project, spec)
    with transaction.atomic(), connection.chunked_cursor() as cursor:  # server-side on PostgreSQL
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(CHUNK_ROWS):
            if not chat:
                yield [(text, completion, 2 * d > n) for text, _messages_json, completion, n, d in batch]
                continue
            rows = []
            for text, messages_json, completion, n, d in batch:
                # A raw cursor returns JSON columns as text on both PostgreSQL and SQLite.
                messages = json.loads(messages_json) if messages_json is not None else None
                prompt = _messages(messages) if messages is not None else [{"role": "user", "content": text}]
                rows.append((prompt, [{"role": "assistant", "content": completion}], 2 * d > n))
            yield rows


class _Pseudonyms(dict):
    """user id -> pseudonym, each computed once per export."""

    def __missing__(self, user_id: int) -> str:
        name = self[user_id] = pseudonym(user_id)
        return name


def raw_batches(project: Project, spec: ExportSpec) -> Iterator[list[tuple]]:
    """RAW_COLUMNS per label; annotators pseudonymised unless names were asked for."""
    batches = _fetch_batches(labels_queryset(project, spec))
    if spec.annotator_names:
        yield from batches
        return
    names = _Pseudonyms()
    for batch in batches:
        # One comprehension per batch: this loop runs a million times in a large export.
        yield [(g, r, c, names[a], d, reason, ca, ua) for g, r, c, a, d, reason, ca, ua in batch]


def kto_rows(project: Project, spec: ExportSpec) -> Iterator[tuple]:
    for batch in kto_batches(project, spec):
        yield from batch


def raw_rows(project: Project, spec: ExportSpec) -> Iterator[tuple]:
    for batch in raw_batches(project, spec):
        yield from batch


# --- encoders ------------------------------------------------------------------------------------
# Each takes batches of rows and yields (bytes, rows in them).


def _batched(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
        encode_basestring(prompt) if isinstance(prompt, str) else _encode_json(prompt),
        encode_basestring(completion) if isinstance(completion, str) else _encode_json(completion),
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
        prompt if isinstance(prompt, str) else _encode_json(prompt),
        completion if isinstance(completion, str) else _encode_json(completion),
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


def _parquet_schema(view: str, chat: bool):
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


def export_stream(
    project: Project, spec: ExportSpec, *, on_rows: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    """The export file as a stream of byte chunks; on_rows(n) reports progress per chunk."""
    chat = spec.view == "kto" and uses_chat_form(project, spec)
    batches = kto_batches(project, spec, chat=chat) if spec.view == "kto" else raw_batches(project, spec)
    if spec.format == "jsonl":
        chunks = jsonl_chunks(batches, spec.view)
    elif spec.format == "csv":
        chunks = csv_chunks(batches, spec.view)
    else:
        chunks = parquet_chunks(batches, _parquet_schema(spec.view, chat))
    for data, count in chunks:
        if on_rows is not None and count:
            on_rows(count)
        if data:
            yield data


def write_export(project: Project, spec: ExportSpec, out, *, on_rows=None) -> None:
    """Write the export to a binary file object (the management command's path)."""
    for data in export_stream(project, spec, on_rows=on_rows):
        out.write(data)

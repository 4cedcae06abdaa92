"""Selected rows fetched in batches from a server-side cursor, ready to encode."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from django.db import connection, transaction
from django.db.models import QuerySet

from feedback.models import Generation, Project, Prompt

from .params import ExportSpec, encode_json, pseudonym
from .selection import labels_queryset, majority_queryset, uses_chat_form

# Rows per server-side cursor fetch and per streamed chunk. Measured on the 1M-label bench:
# 500-2000 run fastest (a batch stays in CPU cache); 2000 keeps fetch round trips few when the
# database is across a network. Memory stays flat at any size.
CHUNK_ROWS = 2000

# Row sources yield lists of tuples (one list per cursor fetch), so the encoders work a chunk at a
# time and per-row Python stays minimal.


def _text(value) -> str:
    return value if isinstance(value, str) else "" if value is None else encode_json(value)


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


def _batched(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

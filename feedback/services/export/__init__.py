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

from collections.abc import Callable, Iterator

from feedback.models import Project

from .encoders import csv_chunks, jsonl_chunks, parquet_chunks, parquet_schema
from .params import (  # noqa: F401  (the package's public names)
    CONTENT_TYPES, FORMATS, KTO_COLUMNS, PARAMETERS, RAW_COLUMNS, VIEWS, ExportError, ExportSpec, export_filename,
    parse_export_params, pseudonym,
)
from .rows import kto_batches, kto_rows, raw_batches, raw_rows  # noqa: F401
from .selection import count_rows, labels_queryset, majority_queryset, uses_chat_form  # noqa: F401


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
        chunks = parquet_chunks(batches, parquet_schema(spec.view, chat))
    for data, count in chunks:
        if on_rows is not None and count:
            on_rows(count)
        if data:
            yield data


def write_export(project: Project, spec: ExportSpec, out, *, on_rows=None) -> None:
    """Write the export to a binary file object (the management command's path)."""
    for data in export_stream(project, spec, on_rows=on_rows):
        out.write(data)

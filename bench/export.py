"""Export benchmark: N labels out of PostgreSQL through Prospect's export service, against
PostgreSQL's own COPY of the same rows, in one run on one machine.

    .venv/bin/python bench/export.py [--labels 1000000] [--database prospect_bench]

Creates a dedicated database (dropped at the end unless --keep), fills it with COPY, then streams
view=raw JSONL (one row per label), view=kto JSONL (one row per generation, majorities grouped in
SQL) and view=raw CSV through feedback.services.export.export_stream, measuring rows/s and
resident memory, and finally times `COPY (SELECT the raw rows) TO STDOUT`. The last line is
`ratio=<raw JSONL rows/s / COPY rows/s> peak_rss_mb=<peak RSS during the exports>`.
"""
import argparse
import os
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS_PER_GENERATION = 3
ANNOTATORS = 30
ROUNDS = 10
PROMPTS = 20_000
REASONS = ["", "", "", "too long", 'said "no", then\nchanged its mind', "wrong ünits ✗"]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def server_url(database: str) -> str:
    base = os.environ.get("BENCH_SERVER_URL", "postgres://postgres@127.0.0.1:5432")
    return f"{base.rstrip('/')}/{database}"


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def populate(labels: int) -> int:
    """Users, a project, rounds, prompts, generations and labels, the big tables through COPY.
    Returns the project id."""
    from django.contrib.auth.models import User
    from django.db import connection

    from feedback.models import Generation, Label, Project, Prompt, Round, prompt_hash

    users = User.objects.bulk_create(User(username=f"annotator{i}", password="!") for i in range(ANNOTATORS))
    project = Project.objects.create(name="Bench", base_model="tiny", labels_per_item=LABELS_PER_GENERATION)
    rounds = Round.objects.bulk_create(Round(project=project, number=n + 1) for n in range(ROUNDS))
    generations = -(-labels // LABELS_PER_GENERATION)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    raw = connection.connection  # the psycopg connection Django holds
    with raw.cursor() as cursor:
        columns = "project_id, text, content_hash, created_at"
        with cursor.copy(f"COPY {Prompt._meta.db_table} ({columns}) FROM STDIN") as copy:
            for i in range(PROMPTS):
                text = f"Prompt {i}: explain why the sky looks blue to someone aged {i % 90}."
                copy.write_row((project.pk, text, prompt_hash(text), start))
        cursor.execute(f"SELECT min(id) FROM {Prompt._meta.db_table}")
        first_prompt = cursor.fetchone()[0]
        columns = "prompt_id, round_id, source, text, sampling, created_at"
        with cursor.copy(f"COPY {Generation._meta.db_table} ({columns}) FROM STDIN") as copy:
            for i in range(generations):
                text = f"Completion {i}. Light scatters off air molecules, blue most of all, line {i % 7}."
                round_id = rounds[i * ROUNDS // generations].pk
                copy.write_row((first_prompt + i % PROMPTS, round_id, "imported", text, "{}", start))
        cursor.execute(f"SELECT min(id) FROM {Generation._meta.db_table}")
        first_generation = cursor.fetchone()[0]
        columns = "generation_id, annotator_id, desirable, reason, created_at, updated_at"
        with cursor.copy(f"COPY {Label._meta.db_table} ({columns}) FROM STDIN") as copy:
            for i in range(labels):
                generation, slot = divmod(i, LABELS_PER_GENERATION)
                annotator = users[(generation + slot * 7) % ANNOTATORS].pk
                at = start + timedelta(seconds=i)
                desirable = (generation * 31 + slot * 17) % 5 < 3
                copy.write_row((first_generation + generation, annotator, desirable, REASONS[i % len(REASONS)], at, at))
    # Fresh rows carry no visibility hints yet: whichever query read them first would pay for
    # writing those. VACUUM sets them, so every measured pass reads the same settled tables.
    with connection.cursor() as cursor:
        for model in (Prompt, Generation, Label, Round):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    return project.pk


def measure_export(project, spec, label: str) -> dict:
    from feedback.services.export import export_stream

    rows = size = 0
    peak = before = rss_mb()

    def on_rows(count):
        nonlocal rows, peak
        rows += count
        peak = max(peak, rss_mb())

    began = time.perf_counter()
    for chunk in export_stream(project, spec, on_rows=on_rows):
        size += len(chunk)
    seconds = time.perf_counter() - began
    result = {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "mb": size / 2**20,
              "rss_before_mb": before, "rss_peak_mb": peak}
    print(f"{label:<22} {rows:>9} rows {seconds:7.2f} s {rows / seconds:>10.0f} rows/s "
          f"{size / 2**20:7.1f} MiB  rss {before:.0f} -> peak {peak:.0f} MiB", flush=True)
    return result


def measure_copy(project_id: int) -> dict:
    """PostgreSQL's own COPY of the raw view's rows (annotator ids instead of pseudonyms)."""
    from django.db import connection

    from feedback.models import Generation, Label, Round

    sql = (
        f"COPY (SELECT l.generation_id, r.number, g.checkpoint_id, l.annotator_id, l.desirable, l.reason, "
        f"l.created_at, l.updated_at FROM {Label._meta.db_table} l "
        f"JOIN {Generation._meta.db_table} g ON g.id = l.generation_id "
        f"JOIN {Round._meta.db_table} r ON r.id = g.round_id WHERE r.project_id = {int(project_id)} "
        f"ORDER BY l.generation_id, l.id) TO STDOUT"  # the export's order
    )
    connection.ensure_connection()
    rows = size = 0
    began = time.perf_counter()
    with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for block in copy:
            rows += bytes(block).count(b"\n")  # text COPY escapes newlines inside values
            size += len(block)
    seconds = time.perf_counter() - began
    print(f"{'COPY TO STDOUT':<22} {rows:>9} rows {seconds:7.2f} s {rows / seconds:>10.0f} rows/s "
          f"{size / 2**20:7.1f} MiB", flush=True)
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--database", default="prospect_bench")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()

    recreate_database(args.database)
    os.environ["DATABASE_URL"] = server_url(args.database)
    os.environ.setdefault("PROSPECT_DATA_DIR", f"/tmp/{args.database}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from feedback.models import Project
    from feedback.services.export import ExportSpec

    try:
        call_command("migrate", verbosity=0)
        began = time.perf_counter()
        project_id = populate(args.labels)
        print(f"populated {args.labels} labels in {time.perf_counter() - began:.1f} s", flush=True)
        project = Project.objects.get(pk=project_id)

        # COPY runs before and after the exports and its faster pass is the yardstick, so a
        # noisy moment on a shared machine cannot flatter the ratio.
        copies = [measure_copy(project_id)]
        raw = measure_export(project, ExportSpec(format="jsonl", view="raw"), "prospect raw jsonl")
        measure_export(project, ExportSpec(format="jsonl", view="kto"), "prospect kto jsonl")
        measure_export(project, ExportSpec(format="csv", view="raw"), "prospect raw csv")
        measure_export(project, ExportSpec(format="parquet", view="raw"), "prospect raw parquet")
        copies.append(measure_copy(project_id))
        copy = max(copies, key=lambda result: result["rows_per_s"])
        assert raw["rows"] == copy["rows"] == args.labels, (raw["rows"], copy["rows"])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # whole run, fill included
        print(f"ratio={raw['rows_per_s'] / copy['rows_per_s']:.3f} peak_rss_mb={peak:.0f}")
    finally:
        connection.close()
        if not args.keep:
            drop_database(args.database)


if __name__ == "__main__":
    main()

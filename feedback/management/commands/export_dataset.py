"""Export a project's labels to a file on the server, with a progress bar: the same selection and
encoders as GET /api/projects/{id}/export/."""
import os
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from feedback.models import Project
from feedback.services.export import PARAMETERS, ExportError, count_rows, parse_export_params, write_export


class Command(BaseCommand):
    help = "Export a project's labels as JSONL, CSV or Parquet (view kto or raw)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project id or name.")
        parser.add_argument("--out", required=True, help="Output file ('-' for standard output).")
        parser.add_argument("--format", default="jsonl", help="jsonl (default), csv or parquet.")
        parser.add_argument("--view", default="kto", help="kto (default): one row per generation with its "
                            "majority label; raw: one row per label.")
        parser.add_argument("--round", action="append", default=[], help="Round number(s); repeat or comma-separate.")
        parser.add_argument("--annotator", action="append", default=[],
                            help="User id, username or pseudonym; repeat or comma-separate.")
        parser.add_argument("--from", dest="from_", help="Labels created at or after this ISO date/datetime.")
        parser.add_argument("--to", help="Labels created at or before this ISO date/datetime.")
        parser.add_argument("--min-agreement", help="0..1: minimum share of labels agreeing with the majority.")
        parser.add_argument("--unanimous", action="store_true", help="Only generations whose labels all agree.")
        parser.add_argument("--min-labels", help="Only generations with at least this many selected labels.")
        parser.add_argument("--annotator-names", action="store_true", help="Usernames instead of pseudonyms (raw).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        project = self._project(options["project"])
        params = {
            "format": [options["format"]],
            "view": [options["view"]],
            "round": options["round"],
            "annotator": options["annotator"],
            "from": [options["from_"] or ""],
            "to": [options["to"] or ""],
            "min_agreement": [options["min_agreement"] or ""],
            "min_labels": [options["min_labels"] or ""],
            "unanimous": ["1" if options["unanimous"] else ""],
            "annotator_names": ["1" if options["annotator_names"] else ""],
        }
        try:
            spec = parse_export_params(project, params)
        except ExportError as error:
            message = str(error)
            for name in PARAMETERS:  # name the command's options, not the query parameters
                message = message.replace(f"'{name}'", "--" + name.replace("_", "-"))
            raise CommandError(message) from None

        to_stdout = options["out"] == "-"
        total = count_rows(project, spec)
        progress = tqdm(total=total, unit="rows", disable=options["no_progress"] or None, file=sys.stderr)
        written = 0

        def on_rows(count):
            nonlocal written
            written += count
            progress.update(count)

        target = options["out"]
        partial = f"{target}.partial"
        try:
            with progress:
                if to_stdout:
                    write_export(project, spec, sys.stdout.buffer, on_rows=on_rows)
                    sys.stdout.flush()
                    return
                # Written aside and renamed at the end, so a failed export never looks complete.
                with open(partial, "wb") as out:
                    write_export(project, spec, out, on_rows=on_rows)
                os.replace(partial, target)
        except BaseException:
            if not to_stdout and os.path.exists(partial):
                os.remove(partial)
            raise
        if not to_stdout:
            self.stderr.write(f"Wrote {written} rows to {target}")

    @staticmethod
    def _project(value: str) -> Project:
        project = Project.objects.filter(pk=int(value)).first() if value.isdigit() else None
        project = project or Project.objects.filter(name=value).first()
        if project is None:
            raise CommandError(f"No project {value!r} (give its id or name).")
        return project

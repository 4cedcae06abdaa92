"""What an export holds: its parameters, checked, as an ExportSpec."""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from datetime import timezone as dt_timezone

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import slugify

from feedback.models import Label, Project
from feedback.services.errors import InvalidInput

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
# Share-of-majority comparisons run in SQL floats; this keeps 0.7 * 10 >= 7 true.
AGREEMENT_EPSILON = 1e-9
_TRUE = {"1", "true", "yes", "on"}
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_FALSE = {"0", "false", "no", "off"}


class ExportError(InvalidInput):
    """A bad export parameter; the message names it and says what is accepted."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message, field=field)


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

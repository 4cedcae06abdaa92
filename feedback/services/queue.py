"""The annotation queue: which generation an annotator sees next.

Rules:
- a generation needs `project.labels_per_item` distinct annotators; a live lease (Assignment)
  holds one of those places for its annotator until it expires (`project.lease_minutes`);
- an annotator never gets a generation they have labelled;
- items they skipped come back to them last (oldest skip first), and stay available to others;
- while they hold a live lease, asking again returns the same item (newest lease first, so an
  undone item comes back before the one that was on screen); `exclude` lets a page hold a second,
  prefetched item.

Concurrency: a claim locks candidate rows with SELECT ... FOR UPDATE SKIP LOCKED and then counts
labels and leases again in a new statement. Under READ COMMITTED that new statement sees every
claim committed before the lock was granted, whereas counts computed in the candidate query may be
stale. Label submission locks the same row (see services/labels.py), so claims and labels on one
generation are serialised and no item goes past its overlap. Each claim attempt is its own short
transaction, so a waiting claimant never holds other rows (no deadlocks). On SQLite, settings make
every transaction IMMEDIATE, which serialises writers and makes the same code correct.
"""
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from feedback.models import Assignment, Generation, Label, Project, Round, Skip

# Rounds whose generations are labelled: a generating round's items reach the queue as they are written.
SERVED_ROUND_STATUSES = (Round.Status.OPEN, Round.Status.GENERATING)
CLAIM_BATCH = 16


def _count_per_generation(queryset):
    """A correlated COUNT(*) of `queryset` rows for the outer generation, 0 when there are none."""
    counted = queryset.filter(generation=OuterRef("pk")).order_by().values("generation")
    return Coalesce(Subquery(counted.annotate(n=Count("pk")).values("n")), Value(0), output_field=IntegerField())


def _live_leases(now):
    return Assignment.objects.filter(expires_at__gt=now)


def served_generations(project: Project):
    return Generation.objects.filter(round__project=project, round__status__in=SERVED_ROUND_STATUSES)


def available_to(user, project: Project, now=None):
    """Generations this annotator could take now: not labelled by them and with a free place
    (labels plus other annotators' live leases below the overlap). Their own lease keeps the item
    available to them."""
    now = now or timezone.now()
    others_leases = _live_leases(now).exclude(annotator=user)
    return (
        served_generations(project)
        .filter(~Exists(Label.objects.filter(generation=OuterRef("pk"), annotator=user)))
        .annotate(taken=_count_per_generation(Label.objects.all()) + _count_per_generation(others_leases))
        .filter(taken__lt=project.labels_per_item)
    )


def _candidate_ids(user, project: Project, now, tried) -> list[int]:
    """Up to CLAIM_BATCH ids in queue order: never-skipped items first, newest round first and the
    oldest item first within a round; then the items this annotator skipped, longest-ago skip first.
    One query per round ordered by id lets PostgreSQL walk the (round, id) index and stop at the
    LIMIT instead of counting labels for every generation of the project."""
    my_skips = Skip.objects.filter(generation=OuterRef("pk"), annotator=user)
    candidates = available_to(user, project, now).exclude(pk__in=tried)
    fresh = candidates.filter(~Exists(my_skips))
    rounds = project.rounds.filter(status__in=SERVED_ROUND_STATUSES).order_by("-number").values_list("pk", flat=True)
    for round_id in rounds:
        ids = list(fresh.filter(round_id=round_id).order_by("pk").values_list("pk", flat=True)[:CLAIM_BATCH])
        if ids:
            return ids
    skipped = candidates.filter(Exists(my_skips)).annotate(skipped_at=Subquery(my_skips.values("created_at")[:1]))
    return list(skipped.order_by("skipped_at", "pk").values_list("pk", flat=True)[:CLAIM_BATCH])


def _held_lease(user, project: Project, now, exclude) -> Assignment | None:
    return (
        Assignment.objects.filter(
            annotator=user,
            expires_at__gt=now,
            generation__round__project=project,
            generation__round__status__in=SERVED_ROUND_STATUSES,
        )
        .exclude(generation_id__in=exclude)
        .select_related("generation__round", "generation__prompt")
        .order_by("-created_at", "-pk")
        .first()
    )


def has_room(generation: Generation, user, project: Project, now=None) -> bool:
    """The authoritative check that `user` may add a label to `generation`, run while the
    generation row is locked (by a claim here, by label submission in services/labels.py)."""
    now = now or timezone.now()
    if Label.objects.filter(generation=generation, annotator=user).exists():
        return False
    labels = Label.objects.filter(generation=generation).count()
    others_leases = _live_leases(now).filter(generation=generation).exclude(annotator=user).count()
    return labels + others_leases < project.labels_per_item


def lease(generation: Generation, user, project: Project) -> Assignment:
    """Reserve `generation` for `user` for project.lease_minutes (replacing an older lease).
    Call with the generation row locked."""
    Assignment.objects.filter(generation=generation, annotator=user).delete()
    now = timezone.now()
    return Assignment.objects.create(
        generation=generation, annotator=user, expires_at=now + timedelta(minutes=project.lease_minutes)
    )


def next_item(user, project: Project, *, exclude=()) -> Generation | None:
    """The generation `user` should label next in `project`, leased to them; None when nothing is left.

    `exclude`: generation ids the caller already holds (e.g. the item on screen) and wants a
    different item besides; they are neither returned nor claimed again.
    """
    exclude = set(exclude)
    held = _held_lease(user, project, timezone.now(), exclude)
    if held is not None:
        return held.generation
    tried = set(exclude)
    while True:
        with transaction.atomic():
            now = timezone.now()
            candidate_ids = _candidate_ids(user, project, now, tried)
            if not candidate_ids:
                return None
            locked = list(
                Generation.objects.filter(pk__in=candidate_ids).select_for_update(skip_locked=True)
            )
            if not locked:
                # Every candidate is being claimed by someone else this instant. Wait for the
                # first one instead of reporting an empty queue that is not empty.
                locked = list(Generation.objects.filter(pk=candidate_ids[0]).select_for_update())
            locked.sort(key=lambda generation: candidate_ids.index(generation.pk))
            for generation in locked:
                if has_room(generation, user, project, now):
                    lease(generation, user, project)
                    return Generation.objects.select_related("round", "prompt").get(pk=generation.pk)
                tried.add(generation.pk)


def skip(user, generation: Generation) -> Skip:
    """Pass on an item: the lease is released (the place goes back to others) and the item
    returns to this annotator after everything they have not skipped."""
    with transaction.atomic():
        Assignment.objects.filter(generation=generation, annotator=user).delete()
        skip_row, _ = Skip.objects.update_or_create(
            generation=generation, annotator=user, defaults={"created_at": timezone.now()}
        )
    return skip_row


def count_available(user, project: Project, round_: Round | None = None, now=None) -> int:
    """How many generations available_to() holds (in one round when given), counted from the
    label and lease tables instead of per-generation subqueries: every generation of a served
    round, minus those the user labelled, minus those others filled with labels or live leases."""
    now = now or timezone.now()
    k = project.labels_per_item
    generations = served_generations(project)
    if round_ is not None:
        generations = generations.filter(round=round_)
    labels = Label.objects.filter(generation__in=generations)
    mine = labels.filter(annotator=user).values("generation")
    others_full = labels.exclude(generation__in=mine).values("generation").annotate(n=Count("pk")).filter(n__gte=k)
    # Few rows: items that only live leases of others fill up.
    leased = _live_leases(now).exclude(annotator=user).filter(generation__in=generations).values("generation")
    filled_by_leases = (
        generations.filter(pk__in=leased)
        .exclude(pk__in=mine)
        .annotate(labels_n=_count_per_generation(Label.objects.all()))
        .filter(labels_n__lt=k)
        .annotate(leases_n=_count_per_generation(_live_leases(now).exclude(annotator=user)))
        .filter(labels_n__gte=k - F("leases_n"))
    )
    return generations.count() - mine.count() - others_full.count() - filled_by_leases.count()


def round_progress(user, round_: Round) -> dict:
    """Progress shown next to an item: the caller's labels in the round against what they can
    still label there, and the round's completed items against its size."""
    project = round_.project
    round_labels = Label.objects.filter(generation__round=round_)
    mine_done = round_labels.filter(annotator=user).count()
    complete = round_labels.values("generation").annotate(n=Count("pk")).filter(n__gte=project.labels_per_item)
    return {
        "mine_done": mine_done,
        "mine_total": mine_done + count_available(user, project, round_),
        "round_done": complete.count(),
        "round_total": Generation.objects.filter(round=round_).count(),
    }


def has_live_lease(user, generation: Generation, now=None) -> bool:
    return _live_leases(now or timezone.now()).filter(generation=generation, annotator=user).exists()


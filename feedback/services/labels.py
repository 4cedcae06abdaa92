"""Writing labels: submit (idempotent per annotator and generation), edit, delete, undo.
Every change appends a LabelEvent, so the history of a decision is never lost.

Each write that can add a label locks the generation row first (the queue's claims lock the
same row), so the overlap check below cannot race a concurrent claim or label.
"""
from dataclasses import dataclass

from django.db import transaction

from feedback.models import Assignment, Generation, Label, LabelEvent, Project, Skip

from . import queue
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .limits import REASON_MAX_CHARS


def clean_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_CHARS:
        raise InvalidInput(f"Ensure this field has no more than {REASON_MAX_CHARS} characters.", field="reason")
    return reason


def _locked_generation(generation_id: int) -> Generation:
    # of=("self",): lock the generation only, not its round and project, which every label shares.
    return (
        Generation.objects.select_for_update(of=("self",))
        .select_related("round__project")
        .get(pk=generation_id)
    )


def _record(label: Label, action: str, *, desirable=None, reason="") -> LabelEvent:
    return LabelEvent.objects.create(
        label=label,
        generation_id=label.generation_id,
        annotator_id=label.annotator_id,
        action=action,
        desirable=desirable,
        reason=reason,
    )


def _forget_queue_state(user, generation: Generation) -> None:
    """A labelled item no longer needs the annotator's lease or skip."""
    Assignment.objects.filter(generation=generation, annotator=user).delete()
    Skip.objects.filter(generation=generation, annotator=user).delete()


def _update(label: Label, desirable: bool, reason: str) -> Label:
    if label.desirable != desirable or label.reason != reason:
        label.desirable, label.reason = desirable, reason
        label.save(update_fields=["desirable", "reason", "updated_at"])
        _record(label, LabelEvent.Action.UPDATED, desirable=desirable, reason=reason)
    return label


def submit_label(user, generation: Generation, desirable: bool, reason: str = "") -> tuple[Label, bool]:
    """Record `user`'s decision on `generation`. Returns (label, created).

    A repeat for the same generation updates the existing label (created=False) instead of adding
    one. A new label needs a free place: Conflict when the item already has labels_per_item labels
    and leases of others and the caller holds no live lease on it, or when its round is closed or failed.
    """
    reason = clean_reason(reason)
    with transaction.atomic():
        generation = _locked_generation(generation.pk)
        project = generation.round.project
        label = Label.objects.filter(generation=generation, annotator=user).first()
        if label is not None:
            _forget_queue_state(user, generation)
            return _update(label, desirable, reason), False
        if generation.round.status not in queue.SERVED_ROUND_STATUSES:
            raise Conflict(
                f"Round {generation.round.number} is {generation.round.status}; it takes no new labels."
            )
        if not queue.has_live_lease(user, generation) and not queue.has_room(generation, user, project):
            raise Conflict(
                f"This item already has the {project.labels_per_item} label(s) it needs "
                "(or they are reserved); take the next item from the queue."
            )
        label = Label.objects.create(generation=generation, annotator=user, desirable=desirable, reason=reason)
        _record(label, LabelEvent.Action.CREATED, desirable=desirable, reason=reason)
        _forget_queue_state(user, generation)
        return label, True


def _own(user, label: Label) -> None:
    if label.annotator_id != user.pk:
        raise Forbidden("You can only change your own labels.")


def _locked_label(label: Label) -> Label:
    """The label's row, locked; NotFound when a concurrent undo or delete removed it."""
    locked = Label.objects.select_for_update().filter(pk=label.pk).first()
    if locked is None:
        raise NotFound("That label no longer exists.")
    return locked


def edit_label(user, label: Label, *, desirable: bool | None = None, reason: str | None = None) -> Label:
    """Change the caller's own label; fields left as None keep their value."""
    _own(user, label)
    with transaction.atomic():
        label = _locked_label(label)
        return _update(
            label,
            label.desirable if desirable is None else desirable,
            label.reason if reason is None else clean_reason(reason),
        )


def delete_label(user, label: Label) -> None:
    """Remove the caller's own label; the item goes back to the pool."""
    _own(user, label)
    with transaction.atomic():
        label = _locked_label(label)
        _record(label, LabelEvent.Action.DELETED)
        label.delete()


@dataclass(frozen=True)
class Undone:
    label_id: int
    desirable: bool
    reason: str
    generation: Generation


def undo_last(user, project: Project | None = None) -> Undone:
    """Remove the caller's most recently created label (in `project` when given) and lease the
    item back to them, so it is their next item. NotFound when there is nothing to undo; Conflict
    when that label's round is closed (it could not be labelled again)."""
    labels = Label.objects.filter(annotator=user)
    if project is not None:
        labels = labels.filter(generation__round__project=project)
    with transaction.atomic():
        latest = labels.order_by("-created_at", "-pk").first()
        if latest is None:
            raise NotFound("You have no label to undo.")
        generation = _locked_generation(latest.generation_id)
        label = Label.objects.filter(pk=latest.pk).first()
        if label is None:  # removed by a concurrent undo or delete
            raise NotFound("You have no label to undo.")
        if generation.round.status not in queue.SERVED_ROUND_STATUSES:
            raise Conflict(
                f"Your last label is in round {generation.round.number}, which is {generation.round.status}: "
                "it can be edited, not undone."
            )
        undone = Undone(label.pk, label.desirable, label.reason, generation)
        _record(label, LabelEvent.Action.UNDONE)
        label.delete()
        queue.lease(generation, user, generation.round.project)
    return undone

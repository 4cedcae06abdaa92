"""Rounds: an admin opens round k+1 (web) and a generation worker samples its items.

The worker writes each batch's generations in one transaction as soon as the batch is sampled,
so annotators can start on a round while it is still generating. A redelivered task resumes:
prompts that already have their generations in the round are not sampled again.
"""
import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from feedback.models import Generation, Project, Prompt, Round

from . import storage
from .errors import Conflict, InvalidRequest, WorkerUnavailable

log = logging.getLogger(__name__)


PROMPT_LIMIT_ERROR = {"prompt_limit": ["must be a whole number of at least 1, or empty for all prompts"]}


# --- web side -----------------------------------------------------------------------------------

def parse_prompt_limit(raw):
    """A submitted prompt_limit (form string or JSON value) -> what open_round takes: None when
    blank, an int for a numeric string; any other value is passed on for open_round to check."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            raise InvalidRequest(PROMPT_LIMIT_ERROR) from None
    return raw


def open_round(project, *, user, prompt_limit: int | None = None) -> Round:
    """Create round k+1 (status "generating") from the active checkpoint and enqueue its generation.

    prompt_limit: sample this many prompts (a seeded random choice), or all when None.
    Raises InvalidRequest (no prompts, bad limit), Conflict (a round is still generating) or
    WorkerUnavailable (broker down; the round is then failed).
    """
    if prompt_limit is not None and (isinstance(prompt_limit, bool) or not isinstance(prompt_limit, int)
                                     or prompt_limit < 1):
        raise InvalidRequest(PROMPT_LIMIT_ERROR)
    with transaction.atomic():
        # Lock the project row so two admins clicking at once cannot open two rounds.
        project = Project.objects.select_for_update(of=("self",)).select_related("active_checkpoint").get(pk=project.pk)
        _fail_stalled_rounds(project)
        busy = project.rounds.filter(status=Round.Status.GENERATING).order_by("number").first()
        if busy is not None:
            raise Conflict(f"Round {busy.number} is still generating; wait for it to finish.")
        prompt_count = project.prompts.count()
        if prompt_count == 0:
            raise InvalidRequest("The project has no prompts yet: import some first.")
        number = (project.rounds.aggregate(last=Max("number"))["last"] or 0) + 1
        chosen = min(prompt_limit, prompt_count) if prompt_limit else prompt_count
        round_ = Round.objects.create(
            project=project, number=number, status=Round.Status.GENERATING,
            checkpoint=project.active_checkpoint, prompt_limit=prompt_limit,
            progress_total=chosen * project.samples_per_prompt,
        )
        transaction.on_commit(lambda: _enqueue(round_))
    log.info("%s opened round %s of project %s", user, number, project.pk)
    return round_


def _enqueue(round_: Round) -> None:
    from trainer.tasks import generate_round

    try:
        generate_round.delay(round_.pk)
    except Exception as exc:
        log.exception("could not enqueue generation of round %s", round_.pk)
        Round.objects.filter(pk=round_.pk, status=Round.Status.GENERATING).update(
            status=Round.Status.FAILED, error=f"could not reach the task broker: {exc}", finished_at=timezone.now()
        )
        raise WorkerUnavailable("The task broker cannot be reached; the round was not started.") from exc


def _fail_stalled_rounds(project) -> None:
    """A generating round with no new item for longer than the stale limit lost its worker."""
    cutoff = timezone.now() - timedelta(seconds=settings.PROSPECT_STALE_RUN_SECONDS)
    for round_ in project.rounds.filter(status=Round.Status.GENERATING, created_at__lt=cutoff):
        last_item = round_.generations.aggregate(last=Max("created_at"))["last"]
        if last_item is None or last_item < cutoff:
            Round.objects.filter(pk=round_.pk, status=Round.Status.GENERATING).update(
                status=Round.Status.FAILED, finished_at=timezone.now(),
                error=f"generation stalled: no new item for more than {settings.PROSPECT_STALE_RUN_SECONDS} s "
                      "(worker lost?)",
            )


def round_summary(round_: Round) -> dict:
    """What the rounds list shows: status, checkpoint, progress and label counts."""
    return {
        "id": round_.pk,
        "number": round_.number,
        "status": round_.status,
        "checkpoint": round_.checkpoint_id,
        "prompt_limit": round_.prompt_limit,
        "progress_done": round_.progress_done,
        "progress_total": round_.progress_total,
        "generations": getattr(round_, "generation_count", None),
        "labels": getattr(round_, "label_count", None),
        "desirable_labels": getattr(round_, "desirable_count", None),
        "error": round_.error,
        "created_at": round_.created_at,
        "finished_at": round_.finished_at,
    }


def rounds_with_counts(project):
    return project.rounds.annotate(
        generation_count=Count("generations", distinct=True),
        label_count=Count("generations__labels", distinct=True),
        desirable_count=Count("generations__labels", filter=Q(generations__labels__desirable=True), distinct=True),
    ).order_by("number")


# --- worker side --------------------------------------------------------------------------------

def selected_prompts(round_: Round) -> list[Prompt]:
    """The round's prompts: those imported before it opened, all of them or a seeded sample."""
    prompts = list(round_.project.prompts.filter(created_at__lte=round_.created_at).order_by("id"))
    if round_.prompt_limit and round_.prompt_limit < len(prompts):
        chooser = random.Random(f"prospect-round-{round_.project_id}-{round_.number}")
        prompts = sorted(chooser.sample(prompts, round_.prompt_limit), key=lambda prompt: prompt.pk)
    return prompts


def generate_round_items(round_id: int) -> Round | None:
    """What the generation task calls: sample the round's items batch by batch."""
    round_ = Round.objects.select_related("project", "checkpoint").filter(pk=round_id).first()
    if round_ is None or round_.status != Round.Status.GENERATING:
        log.info("round %s is not generating; nothing to do", round_id)
        return round_
    try:
        _generate(round_)
    except Exception as exc:
        log.exception("generation of round %s failed", round_id)
        Round.objects.filter(pk=round_id, status=Round.Status.GENERATING).update(
            status=Round.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:10000], finished_at=timezone.now()
        )
    else:
        Round.objects.filter(pk=round_id, status=Round.Status.GENERATING).update(
            status=Round.Status.OPEN, finished_at=timezone.now()
        )
    round_.refresh_from_db()
    return round_


def _generate(round_: Round) -> None:
    from .sampling import generate_completions

    project = round_.project
    samples = project.samples_per_prompt
    prompts = selected_prompts(round_)
    already = set(round_.generations.values_list("prompt_id", flat=True))
    todo = [prompt for prompt in prompts if prompt.pk not in already]
    Round.objects.filter(pk=round_.pk).update(
        progress_total=len(prompts) * samples, progress_done=(len(prompts) - len(todo)) * samples
    )
    model = storage.model_path(round_.checkpoint, project.base_model)
    size = max(1, settings.PROSPECT_GENERATION_BATCH_PROMPTS)
    for start in range(0, len(todo), size):
        batch = todo[start:start + size]
        # The seed depends on the batch's first prompt, so a resumed round samples the same way.
        seed = (project.pk * 1_000_003 + round_.number * 10_007 + batch[0].pk) % (2**31)
        sampling = {"temperature": project.temperature, "top_p": project.top_p,
                    "max_new_tokens": project.max_new_tokens, "seed": seed}
        completions = generate_completions(
            model, [prompt.content for prompt in batch], n=samples, **sampling,
        )
        with transaction.atomic():
            if not Round.objects.filter(pk=round_.pk, status=Round.Status.GENERATING).exists():
                return  # failed meanwhile (stalled-round sweep): stop writing
            Generation.objects.bulk_create([
                Generation(prompt=prompt, round=round_, source=Generation.Source.CHECKPOINT,
                           checkpoint=round_.checkpoint, text=text, sampling=sampling)
                for prompt, texts in zip(batch, completions, strict=True)
                for text in texts
            ])
            Round.objects.filter(pk=round_.pk).update(progress_done=F("progress_done") + len(batch) * samples)

"""The whole feedback loop with a scripted annotator, through the services the web API uses.

    open_round -> (a worker generates) -> submit_label for every fresh item, judged by a rule
    -> start_training_run on that round's labels -> (a worker trains) -> activate -> next round

A rule is any function (prompt, completion) -> bool; the prompt is a string or a list of chat
messages, as imported. The built-in default, `mentions_animal`, fits the tiny model: about 40 %
of its corpus completions name an animal, and nothing in the prompt decides whether one does,
so the base model's rate is about 0.4 and only training can move it.

Tasks run on real Celery workers; this module only writes rows and waits for them.
"""
import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from feedback.models import Membership, Project, Prompt, Round
from feedback.services.errors import Conflict as LabelConflict
from feedback.services.labels import submit_label
from trainer.models import TrainingRun

from . import checkpoints, rounds, runs

Rule = Callable[[object, str], bool]
SIMULATED_ADMIN = "simulated-admin"
SIMULATED_ANNOTATOR = "simulated-annotator"
DEFAULT_RULE = "trainer.services.simulation:mentions_animal"


class SimulationError(Exception):
    """The loop cannot go on: a round or run failed, or no worker answered in time."""


def mentions_animal(prompt, completion: str) -> bool:
    """The default scripted annotator: thumbs-up when the completion names an animal
    (cat, dog, fox, owl, horse, ...; see trainer.kto.tiny.ANIMALS), thumbs-down otherwise."""
    from trainer.kto.tiny import mentions_animal as names_animal

    return names_animal(completion)


def load_rule(spec: str) -> Rule:
    """"package.module:function" -> the function. ValueError with the reason otherwise."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"rule {spec!r} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"rule {spec!r}: cannot import {module_name!r} ({exc})") from exc
    rule = getattr(module, attribute, None)
    if not callable(rule):
        raise ValueError(f"rule {spec!r}: {module_name} has no function named {attribute!r}")
    return rule


@dataclass(frozen=True)
class RoundOutcome:
    number: int
    generated_by: int | None  # the checkpoint that sampled this round's items (None: base model)
    items: int  # fresh generations the scripted annotator labelled
    desirable: int
    run: int | None = None  # the training run on this round's labels
    produced: int | None = None  # the checkpoint that run produced (the next round samples from it)

    @property
    def rate(self) -> float | None:
        return self.desirable / self.items if self.items else None


@dataclass
class SimulationSettings:
    rounds: int = 3
    prompt_limit: int | None = None  # prompts sampled per round (None: all)
    overrides: dict = field(default_factory=dict)  # training-run overrides, as the API takes them
    timeout: float = 600.0  # seconds to wait for one round's generation or one run
    poll: float = 0.5


# --- setup --------------------------------------------------------------------------------------

def simulation_users(project: Project):
    """The scripted annotator and the admin who opens rounds and starts runs (created once)."""
    users = get_user_model().objects
    admin, _ = users.get_or_create(username=SIMULATED_ADMIN)
    annotator, _ = users.get_or_create(username=SIMULATED_ANNOTATOR)
    for user in (admin, annotator):
        if user.has_usable_password():
            user.set_unusable_password()  # nobody logs in as these
            user.save(update_fields=["password"])
    Membership.objects.update_or_create(project=project, user=admin, defaults={"role": Membership.Role.ADMIN})
    Membership.objects.get_or_create(project=project, user=annotator, defaults={"role": Membership.Role.ANNOTATOR})
    return admin, annotator


def create_tiny_project(name: str | None = None, *, prompts: int = 32, samples_per_prompt: int = 4,
                        **project_fields) -> Project:
    """A project on the tiny model with `prompts` distinct prompts in the style of its corpus."""
    from trainer.kto.tiny import sample_prompts

    texts = list(dict.fromkeys(sample_prompts(prompts * 20, seed=7)))[:prompts]
    if len(texts) < prompts:
        raise ValueError(f"the tiny model's corpus has only {len(texts)} distinct prompts; ask for fewer")
    fields = {"base_model": "tiny", "labels_per_item": 1, "samples_per_prompt": samples_per_prompt}
    fields.update(project_fields)
    with transaction.atomic():
        project = Project.objects.create(name=name or f"Simulation {timezone.now():%Y-%m-%d %H:%M:%S}", **fields)
        for text in texts:
            Prompt.objects.create(project=project, text=text)
    return project


# --- the loop -----------------------------------------------------------------------------------

def run_simulation(project: Project, *, rule: Rule, settings: SimulationSettings,
                   report: Callable[[str], None] = print) -> list[RoundOutcome]:
    """Run `settings.rounds` rounds, training between them; returns one outcome per round."""
    if settings.rounds < 1:
        raise ValueError("rounds must be at least 1")
    admin, annotator = simulation_users(project)
    outcomes: list[RoundOutcome] = []
    previous: Round | None = None
    for index in range(settings.rounds):
        round_ = _next_round(project, admin, previous, settings, report)
        round_ = wait_for_round(round_, settings, report)
        outcome = label_round(round_, annotator, rule)
        report(f"round {outcome.number}: {describe(outcome)}")
        if index + 1 < settings.rounds:
            overrides = dict(settings.overrides, rounds=[round_.number])
            run = runs.start_training_run(project, user=admin, overrides=overrides)
            report(f"  run {run.pk}: training on {len(run.examples)} examples of round {round_.number}")
            run = wait_for_run(run, settings, report)
            checkpoint = run.checkpoint
            project.refresh_from_db()
            if not project.auto_activate:  # with auto-activate the worker already did this
                checkpoints.activate(checkpoint, user=admin)
            report(f"  run {run.pk}: checkpoint {checkpoint.pk} is active")
            outcome = replace(outcome, run=run.pk, produced=checkpoint.pk)
        outcomes.append(outcome)
        previous = round_
    return outcomes


def _next_round(project, admin, previous: Round | None, settings, report) -> Round:
    project.refresh_from_db()
    if previous is not None and project.auto_activate:
        # The worker that finished the run opened the next round itself.
        deadline = time.monotonic() + settings.timeout
        while (round_ := project.rounds.filter(number__gt=previous.number).order_by("number").first()) is None:
            if time.monotonic() > deadline:
                raise SimulationError("auto-activate is on but the next round was not opened")
            time.sleep(settings.poll)
    else:
        round_ = rounds.open_round(project, user=admin, prompt_limit=settings.prompt_limit)
    source = f"checkpoint {round_.checkpoint_id}" if round_.checkpoint_id else "the base model"
    report(f"round {round_.number}: generating {round_.progress_total} items from {source}")
    return round_


def wait_for_round(round_: Round, settings: SimulationSettings, report) -> Round:
    deadline = time.monotonic() + settings.timeout
    while True:
        round_.refresh_from_db()
        if round_.status == Round.Status.FAILED:
            raise SimulationError(f"round {round_.number} failed: {round_.error}")
        if round_.status != Round.Status.GENERATING:
            return round_
        if time.monotonic() > deadline:
            raise SimulationError(
                f"round {round_.number} still generating after {settings.timeout:g} s "
                f"({round_.progress_done}/{round_.progress_total}); is a worker consuming the 'generation' queue?"
            )
        time.sleep(settings.poll)


def wait_for_run(run: TrainingRun, settings: SimulationSettings, report) -> TrainingRun:
    deadline = time.monotonic() + settings.timeout
    shown = None
    while True:
        run.refresh_from_db()
        if run.status in runs.FINISHED:
            break
        if run.status == TrainingRun.Status.RUNNING and (run.step, run.total_steps) != shown and run.total_steps:
            shown = (run.step, run.total_steps)
            report(f"  run {run.pk}: step {run.step}/{run.total_steps}")
        if time.monotonic() > deadline:
            raise SimulationError(
                f"run {run.pk} still {run.status} after {settings.timeout:g} s; "
                "is a worker consuming the 'training' queue?"
            )
        time.sleep(settings.poll)
    if run.status != TrainingRun.Status.SUCCEEDED:
        raise SimulationError(f"run {run.pk} {run.status}: {run.error or 'no error message'}")
    return run


def label_round(round_: Round, annotator, rule: Rule) -> RoundOutcome:
    """Judge every fresh item of the round with the rule and submit the label as the annotator."""
    items = desirable = 0
    generated_by = set()
    for generation in round_.generations.select_related("prompt").order_by("id"):
        verdict = bool(rule(generation.prompt.content, generation.text))
        try:
            submit_label(annotator, generation, verdict)
        except LabelConflict:
            continue  # already has the labels it needs from real annotators
        items += 1
        desirable += verdict
        generated_by.add(generation.checkpoint_id)
    if len(generated_by) > 1:
        raise SimulationError(f"round {round_.number} mixes items of checkpoints {sorted(generated_by, key=str)}")
    return RoundOutcome(number=round_.number, generated_by=next(iter(generated_by), round_.checkpoint_id),
                        items=items, desirable=desirable)


# --- reporting ----------------------------------------------------------------------------------

def source_text(outcome: RoundOutcome) -> str:
    return f"checkpoint {outcome.generated_by}" if outcome.generated_by else "base model"


def rate_text(outcome: RoundOutcome) -> str:
    return "n/a" if outcome.rate is None else f"{outcome.rate:.1%}"


def describe(outcome: RoundOutcome) -> str:
    return (f"desirable rate {rate_text(outcome)} ({outcome.desirable}/{outcome.items}), "
            f"generated by {source_text(outcome)}")


def one_sided_p_value(first_hits: int, first_n: int, last_hits: int, last_n: int) -> float:
    """P-value of a one-sided two-proportion z-test (pooled) that the last rate exceeds the first."""
    if not first_n or not last_n:
        return 1.0
    pooled = (first_hits + last_hits) / (first_n + last_n)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / first_n + 1 / last_n))
    if spread == 0:
        return 1.0
    z = (last_hits / last_n - first_hits / first_n) / spread
    return 0.5 * math.erfc(z / math.sqrt(2))

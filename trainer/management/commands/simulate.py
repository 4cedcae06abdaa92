"""`manage.py simulate`: the feedback loop end to end with a scripted annotator.

Generation and training run on Celery workers, exactly as for the web app: start one yourself
(`celery -A feedback worker -Q default,generation,training`) or pass --start-worker.
"""
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from feedback.models import Project
from trainer.services import simulation
from trainer.services.errors import ServiceError

# The tiny model learns in a handful of steps at this rate (see trainer/kto/tiny.py).
TINY_LEARNING_RATE = 5e-4
WORKER_READY_SECONDS = 120


class Command(BaseCommand):
    help = (
        "Run N rounds of generate -> label (by a scripted rule) -> train -> activate through the same services "
        "as the web app, and print each round's desirable rate. Without --project it creates a project on the "
        "offline tiny model. Needs a Celery worker on the default, generation and training queues "
        "(or --start-worker)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", help="Name or id of an existing project (default: create one on the tiny model).")
        parser.add_argument("--rounds", type=int, default=3, help="Rounds to generate and label (default 3).")
        parser.add_argument("--rule", default=simulation.DEFAULT_RULE,
                            help="The scripted annotator, module:function taking (prompt, completion) and returning "
                                 f"True for thumbs-up (default {simulation.DEFAULT_RULE}: the completion names an animal).")
        parser.add_argument("--prompts", type=int, default=32, help="Prompts of a created project (default 32).")
        parser.add_argument("--samples", type=int, default=4,
                            help="Completions per prompt of a created project (default 4; an existing project keeps its own).")
        parser.add_argument("--prompt-limit", type=int, help="Prompts sampled per round (default: all).")
        parser.add_argument("--lr", type=float, help="Learning rate of each run (created project: 5e-4).")
        parser.add_argument("--beta", type=float, help="KTO beta of each run.")
        parser.add_argument("--epochs", type=int, help="Epochs of each run.")
        parser.add_argument("--batch-size", type=int, help="Batch size of each run (at least 2).")
        parser.add_argument("--max-steps", type=int, help="Stop each run after this many steps.")
        parser.add_argument("--lora", choices=["on", "off"], help="Train LoRA adapters (merged into the checkpoint).")
        parser.add_argument("--reference", choices=["current", "base"], help="Reference model of each run.")
        parser.add_argument("--seed", type=int, help="Seed of each run.")
        parser.add_argument("--timeout", type=float, default=900,
                            help="Seconds to wait for one round's generation or one run (default 900).")
        parser.add_argument("--start-worker", action="store_true",
                            help="Start a Celery worker on all three queues for the simulation and stop it after.")

    def handle(self, *args, **options):
        try:
            rule = simulation.load_rule(options["rule"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["rounds"] < 1:
            raise CommandError("--rounds must be at least 1")
        project = self._project(options)
        sim_settings = simulation.SimulationSettings(
            rounds=options["rounds"], prompt_limit=options["prompt_limit"], overrides=_overrides(options),
            timeout=options["timeout"],
        )
        self.stdout.write(f"Project \"{project.name}\" (id {project.pk}), rule {options['rule']}, "
                          f"{options['rounds']} round(s)")
        with _worker(options["start_worker"], self.stdout):
            try:
                outcomes = simulation.run_simulation(project, rule=rule, settings=sim_settings, report=self.stdout.write)
            except (simulation.SimulationError, ServiceError) as exc:
                raise CommandError(str(exc)) from None
        self._summary(outcomes)

    def _project(self, options) -> Project:
        name = options["project"]
        if name is None:
            try:
                return simulation.create_tiny_project(
                    prompts=options["prompts"], samples_per_prompt=options["samples"],
                    learning_rate=TINY_LEARNING_RATE,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        project = Project.objects.filter(name=name).first()
        if project is None and name.isdigit():
            project = Project.objects.filter(pk=int(name)).first()
        if project is None:
            raise CommandError(f"No project named or numbered {name!r}.")
        return project

    def _summary(self, outcomes):
        self.stdout.write("")
        self.stdout.write("round  generated by      labelled  desirable  rate")
        for outcome in outcomes:
            source, rate = simulation.source_text(outcome), simulation.rate_text(outcome)
            self.stdout.write(f"{outcome.number:>5}  {source:<16}  {outcome.items:>8}  {outcome.desirable:>9}  {rate}")
        if len(outcomes) >= 2:
            first, last = outcomes[0], outcomes[-1]
            p = simulation.one_sided_p_value(first.desirable, first.items, last.desirable, last.items)
            self.stdout.write(f"round {first.number} -> round {last.number}: one-sided two-proportion test p = {p:.2g}")


def _overrides(options) -> dict:
    names = {"lr": "learning_rate", "beta": "beta", "epochs": "epochs", "batch_size": "batch_size",
             "max_steps": "max_steps", "reference": "reference", "seed": "seed"}
    overrides = {target: options[source] for source, target in names.items() if options[source] is not None}
    if options["lora"] is not None:
        overrides["lora"] = options["lora"] == "on"
    return overrides


@contextmanager
def _worker(start: bool, out):
    """With --start-worker, a Celery worker for the length of the simulation; otherwise nothing."""
    if not start:
        yield
        return
    log_path = Path(settings.DATA_DIR) / f"simulate-worker-{os.getpid()}.log"
    command = [
        sys.executable, "-m", "celery", "-A", "feedback", "worker", "-Q", "default,generation,training",
        "--pool", "solo", "--loglevel", "INFO", "-n", f"simulate-{os.getpid()}@%h",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            _wait_ready(process, log_path)
            out.write(f"Worker started (pid {process.pid}, log {log_path})")
            yield
        finally:
            _stop(process)


def _wait_ready(process, log_path: Path) -> None:
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"The worker exited with code {process.returncode}; see {log_path}")
        if " ready." in log_path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise CommandError(f"The worker was not ready after {WORKER_READY_SECONDS} s; see {log_path}")


def _stop(process) -> None:
    """Warm shutdown (the current task finishes), then SIGKILL after 30 s."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            pass
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()

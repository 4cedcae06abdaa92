"""Server-rendered admin pages: the project page (dashboard and actions) and the playground.

Every action is a POST form that calls one service and redirects back; when the service refuses,
the page is rendered again with its message next to the form and the service's status code.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from feedback.models import Project
from feedback.permissions import is_project_admin, visible_projects
from feedback.services.agreement import agreement_summary
from feedback.services.errors import ServiceError as FeedbackServiceError
from feedback.services.imports import import_file
from trainer import dashboard
from trainer.api.access import admin_object
from trainer.models import Checkpoint, TrainingRun
from trainer.services import checkpoints, playground, rounds, runs
from trainer.services.errors import InvalidRequest, ServiceError

# The training form's fields, in the order they are shown; empty means "project default".
RUN_FIELDS = ("beta", "desirable_weight", "undesirable_weight", "learning_rate", "epochs", "batch_size",
              "max_steps", "seed", "lora", "reference")


def _admin_project(request, project_id: int) -> Project:
    """Outsiders get 404 (a project's existence is not revealed), members who are not admins 403."""
    project = get_object_or_404(visible_projects(request.user).select_related("active_checkpoint"), pk=project_id)
    if not is_project_admin(request.user, project):
        raise PermissionDenied("Only project admins can open the project page.")
    return project


def error_messages(detail) -> list[str]:
    """A service error's detail (a message or {field: [messages]}) as lines to show."""
    if isinstance(detail, dict):
        return [f"{field}: {message}" for field, items in detail.items()
                for message in (items if isinstance(items, (list, tuple)) else [items])]
    return [str(detail)]


def _page_url(project) -> str:
    return reverse("project-page", args=[project.pk])


def _render_project(request, project, *, errors=None, run_values=None, status=200):
    rows = dashboard.round_rows(project)
    context = {
        "project": project,
        "prompt_count": project.prompts.count(),
        "round_rows": rows,
        "rate_chart": dashboard.rate_history(rows),
        "runs": dashboard.recent_runs(project),
        "lineage": dashboard.checkpoint_lineage(project),
        "reasons": dashboard.latest_reasons(project),
        "agreement": agreement_summary(project),
        "errors": errors or {},
        "run_values": run_values or {},
    }
    return render(request, "trainer/project.html", context, status=status)


@login_required
@require_safe
def project_page(request, project_id: int):
    return _render_project(request, _admin_project(request, project_id))


@login_required
@require_safe
def project_live(request, project_id: int):
    """What the page's script polls every ~2 s: progress and curves of the runs and rounds it
    names (?run=ID&round=ID, the ones still in progress on the page)."""
    project = _admin_project(request, project_id)
    run_ids, round_ids = _ids(request.GET.getlist("run")), _ids(request.GET.getlist("round"))
    return JsonResponse({
        "runs": [dashboard.live_payload(run) for run in dashboard.runs_by_id(project, run_ids)],
        "rounds": [dashboard.round_payload(row) for row in dashboard.round_rows(project, ids=round_ids)],
    })


def _ids(values) -> list[int]:
    return [int(value) for value in values if value.isdigit()][:100]


@login_required
@require_POST
def open_round(request, project_id: int):
    project = _admin_project(request, project_id)
    try:
        limit = rounds.parse_prompt_limit(request.POST.get("prompt_limit"))
        round_ = rounds.open_round(project, user=request.user, prompt_limit=limit)
    except ServiceError as exc:
        return _render_project(request, project, errors={"round": error_messages(exc.detail)}, status=exc.status_code)
    messages.success(request, f"Round {round_.number} opened; its items are being generated.")
    return redirect(_page_url(project))


def run_overrides(post) -> dict:
    """The training form -> overrides for start_training_run (blank fields are left out)."""
    overrides = {name: post[name].strip() for name in RUN_FIELDS if post.get(name, "").strip()}
    chosen_rounds = [value for value in post.getlist("rounds") if value.strip()]
    if chosen_rounds:
        overrides["rounds"] = chosen_rounds
    return overrides


@login_required
@require_POST
def start_run(request, project_id: int):
    project = _admin_project(request, project_id)
    overrides = run_overrides(request.POST)
    try:
        run = runs.start_training_run(project, user=request.user, overrides=overrides)
    except ServiceError as exc:
        errors = {"run": error_messages(exc.detail)}
        if isinstance(exc.detail, dict):
            errors["run_fields"] = exc.detail
        values = dict(overrides, rounds=[str(r) for r in overrides.get("rounds", [])])
        return _render_project(request, project, errors=errors, run_values=values, status=exc.status_code)
    messages.success(request, f"Training run {run.pk} queued with {len(run.examples)} examples.")
    return redirect(_page_url(project))


@login_required
@require_POST
def cancel_run(request, run_id: int):
    run = admin_object(request, TrainingRun.objects.select_related("project"), run_id)
    try:
        runs.cancel_run(run)
    except ServiceError as exc:
        return _render_project(request, run.project, errors={"runs": error_messages(exc.detail)},
                               status=exc.status_code)
    messages.success(request, f"Run {run.pk}: cancel requested." if run.status == TrainingRun.Status.RUNNING
                     else f"Run {run.pk} cancelled.")
    return redirect(_page_url(run.project))


@login_required
@require_POST
def activate_checkpoint(request, checkpoint_id: int):
    checkpoint = admin_object(request, Checkpoint.objects.select_related("project"), checkpoint_id)
    try:
        checkpoints.activate(checkpoint, user=request.user)
    except ServiceError as exc:
        return _render_project(request, checkpoint.project, errors={"lineage": error_messages(exc.detail)},
                               status=exc.status_code)
    messages.success(request, f"Checkpoint {checkpoint.pk} is active: the next round generates from it.")
    return redirect(_page_url(checkpoint.project))


@login_required
@require_POST
def import_items(request, project_id: int):
    project = _admin_project(request, project_id)
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return _render_project(request, project, errors={"import": ["Choose a file to import."]}, status=400)
    try:
        result = import_file(project, uploaded, user=request.user, filename=uploaded.name)
    except FeedbackServiceError as exc:
        return _render_project(request, project, errors={"import": [exc.message]}, status=400)
    messages.success(
        request,
        f"Imported {result.rows} rows: {result.prompts_created} new prompts, {result.generations_created} new "
        f"generations, {result.labels_created} labels (round {result.round}).",
    )
    return redirect(_page_url(project))


@login_required
@require_http_methods(["GET", "POST"])
def playground_page(request, project_id: int):
    """A prompt box; the completion comes from a generation worker (playground.generate_text)."""
    project = _admin_project(request, project_id)
    context = {"project": project, "values": {}, "completion": None, "errors": []}
    status = 200
    if request.method == "POST":
        values = {name: request.POST.get(name, "").strip() for name in ("max_new_tokens", "temperature", "seed")}
        prompt = request.POST.get("prompt", "")
        context["values"] = dict(values, prompt=prompt, chat=bool(request.POST.get("chat")))
        try:
            options = _sampling_options(values)
            content = [{"role": "user", "content": prompt}] if request.POST.get("chat") else prompt
            context["completion"] = playground.generate_text(project, content, options)
        except ServiceError as exc:
            context["errors"] = error_messages(exc.detail)
            status = exc.status_code
    return render(request, "trainer/playground.html", context, status=status)


def _sampling_options(values: dict) -> dict:
    """Form strings -> numbers for playground.validate_options (which checks the ranges)."""
    options, errors = {}, {}
    for name, kind in (("max_new_tokens", int), ("temperature", float), ("seed", int)):
        if values.get(name):
            try:
                options[name] = kind(values[name])
            except ValueError:
                errors[name] = ["must be a number"]
    if errors:
        raise InvalidRequest(errors)
    return options

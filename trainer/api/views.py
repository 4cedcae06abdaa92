"""Thin views over trainer.services: check access, parse the body, call one service, shape JSON."""
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from trainer.models import Checkpoint, TrainingRun
from trainer.services import checkpoints, playground, rounds, runs
from trainer.services.errors import ServiceError

from . import access
from .serializers import (
    GenerateResultSerializer, GenerateSerializer, OpenRoundSerializer, TrainingRunOverridesSerializer,
)

COMMON_ERRORS = {
    403: OpenApiResponse(description="Not a project admin (or not logged in)."),
    404: OpenApiResponse(description="No such project (or object) visible to you."),
}
OBJECT = OpenApiResponse(OpenApiTypes.OBJECT)


class ServiceView(GenericAPIView):
    """Maps service errors to their status: 400 with {field: [..]} or {"detail"}, 409, 503, 504."""

    def handle_exception(self, exc):
        if isinstance(exc, ServiceError):
            body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
            return Response(body, status=exc.status_code)
        return super().handle_exception(exc)


def body_dict(request) -> dict:
    """The request body as a plain dict (JSON object, or form fields with `rounds` repeatable)."""
    data = request.data
    if hasattr(data, "getlist"):  # a form post: single values, except the lists
        return {key: (data.getlist(key) if key == "rounds" else data.get(key)) for key in data.keys()}
    if not isinstance(data, dict):
        raise ParseError("The body must be a JSON object.")
    return dict(data)


class ProjectRoundsView(ServiceView):
    @extend_schema(summary="List the project's rounds", responses={200: OBJECT, **COMMON_ERRORS},
                   description="Status, the checkpoint each round generates from, progress and label counts.")
    def get(self, request, project_id: int):
        project = access.admin_project(request, project_id)
        page = self.paginate_queryset(rounds.rounds_with_counts(project))
        return self.get_paginated_response([rounds.round_summary(round_) for round_ in page])

    @extend_schema(
        summary="Open the next round", request=OpenRoundSerializer,
        description="Creates round k+1 from the active checkpoint (the base model before any) and starts "
                    "generating `samples_per_prompt` completions per prompt on the generation queue.",
        responses={201: OBJECT, 400: OpenApiResponse(description="No prompts or a bad prompt_limit."),
                   409: OpenApiResponse(description="A round is still generating."),
                   503: OpenApiResponse(description="The task broker is unreachable."), **COMMON_ERRORS},
    )
    def post(self, request, project_id: int):
        project = access.admin_project(request, project_id)
        limit = rounds.parse_prompt_limit(body_dict(request).get("prompt_limit"))
        round_ = rounds.open_round(project, user=request.user, prompt_limit=limit)
        return Response(rounds.round_summary(round_), status=status.HTTP_201_CREATED)


class ProjectTrainingRunsView(ServiceView):
    @extend_schema(summary="List the project's training runs", responses={200: OBJECT, **COMMON_ERRORS})
    def get(self, request, project_id: int):
        project = access.admin_project(request, project_id)
        runs.fail_stale_runs()
        queryset = project.training_runs.select_related("created_by", "checkpoint").order_by("-id")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([runs.run_status(run) for run in page])

    @extend_schema(
        summary="Start a training run", request=TrainingRunOverridesSerializer,
        description="Snapshots the labels (majority per generation, ties left out) and queues a KTO run "
                    "from the active checkpoint. Every field is optional and overrides the project's setting.",
        responses={201: OBJECT, 400: OpenApiResponse(description="A bad override, too few labels, one class only."),
                   503: OpenApiResponse(description="The task broker is unreachable."), **COMMON_ERRORS},
    )
    def post(self, request, project_id: int):
        project = access.admin_project(request, project_id)
        run = runs.start_training_run(project, user=request.user, overrides=body_dict(request))
        return Response(runs.run_status(run), status=status.HTTP_201_CREATED)


class TrainingRunView(ServiceView):
    @extend_schema(summary="A training run's status", responses={200: OBJECT, **COMMON_ERRORS},
                   description="status, phase, step/total_steps, eta_seconds, latest_metrics, error, and the "
                               "per-step metrics history.")
    def get(self, request, run_id: int):
        run = access.admin_object(request, TrainingRun.objects.select_related("project", "created_by"), run_id)
        if run.status == TrainingRun.Status.RUNNING and runs.fail_stale_runs():
            run.refresh_from_db()
        return Response(runs.run_status(run, history=True))


class CancelTrainingRunView(ServiceView):
    @extend_schema(summary="Cancel a training run", request=None,
                   description="A queued run is cancelled at once; a running one stops within one step.",
                   responses={200: OBJECT, 409: OpenApiResponse(description="The run has already finished."),
                              **COMMON_ERRORS})
    def post(self, request, run_id: int):
        run = access.admin_object(request, TrainingRun.objects.select_related("project"), run_id)
        return Response(runs.run_status(runs.cancel_run(run)))


class ProjectCheckpointsView(ServiceView):
    @extend_schema(summary="List the project's checkpoints", responses={200: OBJECT, **COMMON_ERRORS},
                   description="Newest first, with parent (lineage), run, metrics and which one is active.")
    def get(self, request, project_id: int):
        project = access.admin_project(request, project_id)
        page = self.paginate_queryset(project.checkpoints.order_by("-id"))
        active = project.active_checkpoint_id
        return self.get_paginated_response([checkpoints.checkpoint_summary(c, active_id=active) for c in page])


class ActivateCheckpointView(ServiceView):
    @extend_schema(summary="Activate a checkpoint", request=None,
                   description="The next round generates from it and the next run starts from it. "
                               "Activating an older checkpoint is a rollback.",
                   responses={200: OBJECT, 409: OpenApiResponse(description="Its files are missing."),
                              **COMMON_ERRORS})
    def post(self, request, checkpoint_id: int):
        checkpoint = access.admin_object(request, Checkpoint.objects.select_related("project"), checkpoint_id)
        checkpoints.activate(checkpoint, user=request.user)
        return Response(checkpoints.checkpoint_summary(checkpoint, active_id=checkpoint.pk))


class DownloadCheckpointView(ServiceView):
    @extend_schema(summary="Download a checkpoint",
                   description="The Hugging Face model directory as a tar archive, streamed.",
                   responses={(200, "application/x-tar"): OpenApiResponse(OpenApiTypes.BINARY),
                              409: OpenApiResponse(description="Its files are missing."), **COMMON_ERRORS})
    def get(self, request, checkpoint_id: int):
        checkpoint = access.admin_object(request, Checkpoint.objects.select_related("project"), checkpoint_id)
        response = StreamingHttpResponse(checkpoints.stream_archive(checkpoint), content_type="application/x-tar")
        response["Content-Disposition"] = f'attachment; filename="{checkpoints.archive_name(checkpoint)}"'
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"
        return response


class GenerateView(ServiceView):
    @extend_schema(
        summary="Playground: one completion from the active checkpoint", request=GenerateSerializer,
        description="Runs on a generation worker (the web process never loads a model). Options default to "
                    "the project's sampling settings.",
        responses={200: GenerateResultSerializer, 400: OpenApiResponse(description="A bad prompt or option."),
                   503: OpenApiResponse(description="Broker unreachable or the worker failed."),
                   504: OpenApiResponse(description="No worker answered in time."), **COMMON_ERRORS},
    )
    def post(self, request, project_id: int):
        project = access.admin_project(request, project_id)
        body = body_dict(request)
        if "prompt" not in body:
            return Response({"prompt": ["This field is required."]}, status=400)
        prompt = body.pop("prompt")
        completion = playground.generate_text(project, prompt, body)
        return Response({"completion": completion, "checkpoint": project.active_checkpoint_id})

"""GET /api/projects/{id}/export/: the labelled dataset as a streamed download (admins only)."""
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from feedback.api.access import project_for
from feedback.api.errors import ServiceErrorsMixin
from feedback.services.export import (
    CONTENT_TYPES, FORMATS, VIEWS, export_filename, export_stream, parse_export_params,
)


class JSONErrorsOnly(DefaultContentNegotiation):
    """Here `format` names the file format, not a DRF renderer: errors are always JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


def _parameter(name, description, type_=str, many=False, enum=None):
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, many=many, enum=enum)


@extend_schema(
    summary="Export the project's labels",
    description=(
        "Streams the labelled data. view=kto: one row per generation with its majority label "
        "({prompt, completion, label}, TRL's unpaired preference form; ties left out; chat prompts in "
        "TRL's conversational form). view=raw: one row per label. Filters select labels; majorities and "
        "agreement are computed over the selected labels. Project admins and superusers only."
    ),
    parameters=[
        _parameter("format", "jsonl (default), csv or parquet", enum=FORMATS),
        _parameter("view", "kto (default) or raw", enum=VIEWS),
        _parameter("round", "round numbers; repeat or comma-separate", int, many=True),
        _parameter("annotator", "user id, username or pseudonym; repeat or comma-separate", str, many=True),
        _parameter("from", "labels created at or after this ISO date/datetime", str),
        _parameter("to", "labels created at or before this ISO date/datetime (a date includes the whole day)", str),
        _parameter("min_agreement", "0..1: minimum share of a generation's labels agreeing with its majority", float),
        _parameter("unanimous", "1: only generations whose labels all agree", bool),
        _parameter("min_labels", "only generations with at least this many selected labels (default 1)", int),
        _parameter("annotator_names", "1: usernames instead of pseudonymous ids (view=raw)", bool),
    ],
    responses={
        (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, description="JSON Lines"),
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV with a header row"),
        (200, "application/vnd.apache.parquet"): OpenApiResponse(OpenApiTypes.BINARY, description="Parquet"),
        400: OpenApiResponse(description="A bad parameter; `detail` says which."),
        403: OpenApiResponse(description="Not a project admin."),
        404: OpenApiResponse(description="No such project visible to you."),
    },
)
class ExportView(ServiceErrorsMixin, APIView):
    content_negotiation_class = JSONErrorsOnly

    def get(self, request, project_id: int):
        project = project_for(request.user, project_id, admin=True)  # 404 unseen, 403 not admin
        spec = parse_export_params(project, request.query_params)  # ExportError: a 400 naming the field
        response = StreamingHttpResponse(export_stream(project, spec), content_type=CONTENT_TYPES[spec.format])
        response["Content-Disposition"] = f'attachment; filename="{export_filename(project, spec)}"'
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # let proxies pass chunks on as they come
        return response

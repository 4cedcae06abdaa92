from dataclasses import asdict

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.access import project_for
from feedback.api.errors import ServiceErrorsMixin
from feedback.api.serializers import ErrorSerializer, ImportResultSerializer, ImportUploadSerializer
from feedback.services.imports import check_request_size, import_file


class ImportView(ServiceErrorsMixin, APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Import prompts, generations or labels (project admins)",
        description=(
            "Multipart upload, field `file`: JSONL, CSV, TXT (one prompt per line) or Parquet, chosen by the "
            "file name's extension. Rows: `{prompt}`, `{prompt, completion}`, `{prompt, completion, label}` "
            "(TRL's KTO form; `desirable` is a synonym of `label`; optional `reason`) or `{prompt, chosen, "
            "rejected}` (one desirable and one undesirable generation). `prompt` is a string or a list of "
            "`{role, content}` messages (in CSV: a JSON cell). Labels in the file are recorded as the "
            "importing user's. All or nothing: a bad row gives a 400 naming its `line` and `field`, and "
            "nothing is stored. Prompts are deduplicated per project, generations per round. Generations "
            "go into the latest round (round 1 is created when there is none). Size: IMPORT_MAX_BYTES."
        ),
        request={"multipart/form-data": ImportUploadSerializer},
        responses={201: ImportResultSerializer, 400: ErrorSerializer,
                   403: OpenApiResponse(description="Not a project admin.")},
    )
    def post(self, request, project_id: int):
        project = project_for(request.user, project_id, admin=True)
        check_request_size(int(request.META.get("CONTENT_LENGTH") or 0))
        upload = ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        uploaded = upload.validated_data["file"]
        result = import_file(project, uploaded, user=request.user, filename=uploaded.name)
        return Response(asdict(result), status=status.HTTP_201_CREATED)

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.access import generation_for, project_for
from feedback.api.errors import ServiceErrorsMixin
from feedback.api.payloads import queue_item
from feedback.api.serializers import QueueItemSerializer, SkipInputSerializer
from feedback.services import queue

MAX_EXCLUDED = 10


def _excluded_ids(request) -> list[int]:
    """?exclude=3,4 or ?exclude=3&exclude=4."""
    raw = [part for value in request.query_params.getlist("exclude") for part in value.split(",") if part.strip()]
    try:
        ids = [int(part) for part in raw]
    except ValueError:
        raise ValidationError({"exclude": "Generation ids, comma-separated."}) from None
    if len(ids) > MAX_EXCLUDED:
        raise ValidationError({"exclude": f"At most {MAX_EXCLUDED} ids."})
    return ids


class QueueNextView(ServiceErrorsMixin, APIView):
    @extend_schema(
        summary="Your next item to label",
        description=(
            "Leases one generation to you for the project's lease_minutes and returns it; asking again while "
            "the lease lives returns the same item. To prefetch a second item while one is on screen, pass "
            "`exclude=<id of the item on screen>`: you then hold both. 204 (no body) when nothing is left "
            "for you. Items you skipped come back last. Prompt and completion are untrusted plain text."
        ),
        parameters=[OpenApiParameter("exclude", OpenApiTypes.STR, description="Generation ids you already hold, "
                                     "comma-separated or repeated; another item is returned.")],
        responses={200: QueueItemSerializer, 204: OpenApiResponse(description="Nothing left for you."),
                   404: OpenApiResponse(description="Not a member of the project.")},
    )
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id)
        generation = queue.next_item(request.user, project, exclude=_excluded_ids(request))
        if generation is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(queue_item(request.user, generation))


class QueueSkipView(ServiceErrorsMixin, APIView):
    @extend_schema(
        summary="Skip an item",
        description="Releases your lease; the item stays available to others and comes back to you after "
        "everything you have not skipped.",
        request=SkipInputSerializer,
        responses={204: OpenApiResponse(description="Skipped."), 404: OpenApiResponse(description="No such item here.")},
    )
    def post(self, request, project_id: int):
        project = project_for(request.user, project_id)
        data = SkipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        generation = generation_for(request.user, data.validated_data["generation"])
        if generation.round.project_id != project.pk:
            raise ValidationError({"generation": "This generation belongs to another project."})
        queue.skip(request.user, generation)
        return Response(status=status.HTTP_204_NO_CONTENT)

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.access import project_for
from feedback.api.errors import ServiceErrorsMixin
from feedback.permissions import is_project_admin
from feedback.services.stats import project_stats


class StatsView(ServiceErrorsMixin, APIView):
    @extend_schema(
        summary="Project statistics",
        description=(
            "`rounds`: per round, generations, labelled and complete items, labels (plus `desirable` and "
            "`desirable_rate` for admins, or for everyone when annotators may see others' labels); `me`: your "
            "labels, what is still available to you and your desirable rate. Admins also get `annotators` "
            "(per-annotator counts) and `agreement` (Krippendorff's alpha per round, agreement with the "
            "majority per annotator)."
        ),
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), 404: OpenApiResponse(description="Not a member.")},
    )
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id)
        return Response(project_stats(request.user, project, is_admin=is_project_admin(request.user, project)))

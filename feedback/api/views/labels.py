from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.access import generation_for, label_for, project_for
from feedback.api.errors import ServiceErrorsMixin
from feedback.api.payloads import queue_item
from feedback.api.serializers import (
    ErrorSerializer, LabelInputSerializer, LabelPatchSerializer, LabelSerializer, UndoInputSerializer,
    UndoResultSerializer,
)
from feedback.models import Label
from feedback.services import labels as label_services
from feedback.services.label_selectors import may_see_others_labels, visible_labels


def _annotator_filter(request, project):
    """?annotator=me or a user id; someone else's labels need may_see_others_labels()."""
    value = request.query_params.get("annotator")
    if not value:
        return None
    if value == "me":
        return request.user.pk
    if not value.isdigit():
        raise ValidationError({"annotator": '"me" or a user id.'})
    annotator = int(value)
    if annotator != request.user.pk and (project is None or not may_see_others_labels(request.user, project)):
        raise PermissionDenied("You may not read other annotators' labels here.")
    return annotator


@extend_schema_view(get=extend_schema(
    summary="List labels",
    description=(
        "Newest first, paginated. With `project`: your labels there, or all of the project's labels when "
        "you are its admin or the project lets annotators see others' labels. Without `project`: your "
        "labels and the labels you may see, across your projects."
    ),
    parameters=[
        OpenApiParameter("project", OpenApiTypes.INT, description="Project id."),
        OpenApiParameter("annotator", OpenApiTypes.STR, description='"me" or a user id.'),
    ],
    responses={200: LabelSerializer(many=True), 403: OpenApiResponse(description="Another annotator's labels."),
               404: OpenApiResponse(description="Not a member of the project.")},
))
class LabelListView(ServiceErrorsMixin, generics.ListAPIView):
    serializer_class = LabelSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return Label.objects.none()
        request = self.request
        project_id = request.query_params.get("project")
        if project_id is not None and not project_id.isdigit():
            raise ValidationError({"project": "A project id."})
        project = project_for(request.user, int(project_id)) if project_id else None
        labels = visible_labels(request.user, project)
        annotator = _annotator_filter(request, project)
        return labels if annotator is None else labels.filter(annotator_id=annotator)

    @extend_schema(
        summary="Label an item",
        description=(
            "Thumbs up (`desirable: true`) or down, with an optional reason. 201 for your first label on the "
            "generation; sending again updates that label (200) and never adds a second one. 409 when the item "
            "already has all the labels it needs and you hold no lease on it, or its round is closed."
        ),
        request=LabelInputSerializer,
        responses={200: LabelSerializer, 201: LabelSerializer, 400: ErrorSerializer,
                   404: OpenApiResponse(description="No such generation in your projects."), 409: ErrorSerializer},
    )
    def post(self, request):
        data = LabelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        generation = generation_for(request.user, data.validated_data["generation"])
        label, created = label_services.submit_label(
            request.user, generation, data.validated_data["desirable"], data.validated_data["reason"]
        )
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class LabelUndoView(ServiceErrorsMixin, APIView):
    @extend_schema(
        summary="Undo your last label",
        description="Removes your most recently created label (in `project` when given; the change is kept in "
        "the label history) and leases the item back to you: `item` is what to show next. 404 when there "
        "is nothing to undo.",
        request=UndoInputSerializer,
        responses={200: UndoResultSerializer, 404: ErrorSerializer},
    )
    def post(self, request):
        data = UndoInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project_id = data.validated_data.get("project")
        project = project_for(request.user, project_id) if project_id is not None else None
        undone = label_services.undo_last(request.user, project)
        return Response({
            "undone": {"id": undone.label_id, "generation": undone.generation.pk,
                       "desirable": undone.desirable, "reason": undone.reason},
            "item": queue_item(request.user, undone.generation),
        })


class LabelDetailView(ServiceErrorsMixin, APIView):
    @extend_schema(summary="A label", responses={200: LabelSerializer})
    def get(self, request, label_id: int):
        return Response(LabelSerializer(label_for(request.user, label_id)).data)

    @extend_schema(
        summary="Edit your label",
        description="Change `desirable` and/or `reason` of one of your own labels (recorded in its history).",
        request=LabelPatchSerializer,
        responses={200: LabelSerializer, 400: ErrorSerializer, 403: OpenApiResponse(description="Not your label.")},
    )
    def patch(self, request, label_id: int):
        label = label_for(request.user, label_id, own=True)
        data = LabelPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        label = label_services.edit_label(request.user, label, **data.validated_data)
        return Response(LabelSerializer(label).data)

    @extend_schema(
        summary="Delete your label",
        responses={204: OpenApiResponse(description="Deleted."), 403: OpenApiResponse(description="Not your label.")},
    )
    def delete(self, request, label_id: int):
        label = label_for(request.user, label_id, own=True)
        label_services.delete_label(request.user, label)
        return Response(status=status.HTTP_204_NO_CONTENT)

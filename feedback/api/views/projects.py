from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.access import project_for, require_superuser
from feedback.api.errors import ServiceErrorsMixin
from feedback.api.serializers import (
    ErrorSerializer, MemberInputSerializer, MembershipSerializer, ProjectSerializer, UserCreateSerializer,
)
from feedback.permissions import visible_projects, with_role
from feedback.services import projects as project_services


@extend_schema_view(get=extend_schema(
    summary="List your projects",
    description="Projects you are a member of (all of them for superusers), with your role. Paginated.",
))
class ProjectListView(ServiceErrorsMixin, generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return with_role(visible_projects(self.request.user), self.request.user).order_by("pk")

    @extend_schema(
        summary="Create a project (superusers)",
        description="Superusers only. The creator becomes the project's first admin.",
        request=ProjectSerializer,
        responses={201: ProjectSerializer, 400: OpenApiResponse(description="Invalid fields."),
                   403: OpenApiResponse(description="Not a superuser.")},
    )
    def post(self, request):
        require_superuser(request.user)
        data = ProjectSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        project = project_services.create_project(request.user, **data.validated_data)
        return Response(ProjectSerializer(project, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(ServiceErrorsMixin, APIView):
    @extend_schema(summary="A project", responses={200: ProjectSerializer, 404: OpenApiResponse(description="Not a member.")})
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id)
        return Response(ProjectSerializer(project, context={"request": request}).data)

    @extend_schema(
        summary="Change a project (project admins)",
        request=ProjectSerializer,
        responses={200: ProjectSerializer, 400: OpenApiResponse(description="Invalid fields."),
                   403: OpenApiResponse(description="Not a project admin.")},
    )
    def patch(self, request, project_id: int):
        project = project_for(request.user, project_id, admin=True)
        data = ProjectSerializer(project, data=request.data, partial=True, context={"request": request})
        data.is_valid(raise_exception=True)
        data.save()
        return Response(data.data)


class MembersView(ServiceErrorsMixin, APIView):
    @extend_schema(summary="List members (project admins)", responses=MembershipSerializer(many=True))
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id, admin=True)
        members = project.memberships.select_related("user").order_by("user__username")
        return Response(MembershipSerializer(members, many=True).data)

    @extend_schema(
        summary="Add a member or change their role (project admins)",
        description='Body: {"username", "role": "annotator"|"admin"}. 201 when added, 200 when the role changed.',
        request=MemberInputSerializer,
        responses={200: MembershipSerializer, 201: MembershipSerializer, 400: ErrorSerializer,
                   403: OpenApiResponse(description="Not a project admin.")},
    )
    def post(self, request, project_id: int):
        project = project_for(request.user, project_id, admin=True)
        data = MemberInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership, created = project_services.set_member(project, **data.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class UserCreateView(ServiceErrorsMixin, APIView):
    @extend_schema(
        summary="Create an account (superusers)",
        description="A plain account; add it to projects with the members endpoint. Passwords go through "
        "Django's password validators.",
        request=UserCreateSerializer,
        responses={201: UserCreateSerializer, 400: OpenApiResponse(description="Invalid or taken username, weak password."),
                   403: OpenApiResponse(description="Not a superuser.")},
    )
    def post(self, request):
        require_superuser(request.user)
        data = UserCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = project_services.create_account(**data.validated_data)
        return Response(UserCreateSerializer(user).data, status=status.HTTP_201_CREATED)

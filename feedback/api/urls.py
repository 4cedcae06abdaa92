"""URLs of the feedback API (mounted under /api/ by feedback/urls.py)."""
from django.urls import path

from .views.auth import TokenView
from .views.imports import ImportView
from .views.labels import LabelDetailView, LabelListView, LabelUndoView
from .views.projects import MembersView, ProjectDetailView, ProjectListView, UserCreateView
from .views.queue import QueueNextView, QueueSkipView
from .views.stats import StatsView

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("users/", UserCreateView.as_view(), name="user-create"),
    path("projects/", ProjectListView.as_view(), name="project-list"),
    path("projects/<int:project_id>/", ProjectDetailView.as_view(), name="project-detail"),
    path("projects/<int:project_id>/members/", MembersView.as_view(), name="project-members"),
    path("projects/<int:project_id>/import/", ImportView.as_view(), name="api-project-import"),
    path("projects/<int:project_id>/queue/next/", QueueNextView.as_view(), name="queue-next"),
    path("projects/<int:project_id>/queue/skip/", QueueSkipView.as_view(), name="queue-skip"),
    path("projects/<int:project_id>/stats/", StatsView.as_view(), name="project-stats"),
    path("labels/", LabelListView.as_view(), name="label-list"),
    path("labels/undo/", LabelUndoView.as_view(), name="label-undo"),
    path("labels/<int:label_id>/", LabelDetailView.as_view(), name="label-detail"),
]

"""Orchestration API (mounted under /api/ by feedback/urls.py). All endpoints: project admins only."""
from django.urls import path

from . import views

urlpatterns = [
    path("projects/<int:project_id>/rounds/", views.ProjectRoundsView.as_view(), name="project-rounds"),
    path("projects/<int:project_id>/training-runs/", views.ProjectTrainingRunsView.as_view(),
         name="project-training-runs"),
    path("training-runs/<int:run_id>/", views.TrainingRunView.as_view(), name="training-run"),
    path("training-runs/<int:run_id>/cancel/", views.CancelTrainingRunView.as_view(), name="training-run-cancel"),
    path("projects/<int:project_id>/checkpoints/", views.ProjectCheckpointsView.as_view(),
         name="project-checkpoints"),
    path("checkpoints/<int:checkpoint_id>/activate/", views.ActivateCheckpointView.as_view(),
         name="checkpoint-activate"),
    path("checkpoints/<int:checkpoint_id>/download/", views.DownloadCheckpointView.as_view(),
         name="checkpoint-download"),
    path("projects/<int:project_id>/generate/", views.GenerateView.as_view(), name="project-generate"),
]

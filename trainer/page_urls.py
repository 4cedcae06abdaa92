"""Admin pages: the project page with its actions, its live-status feed, and the playground."""
from django.urls import path

from . import views

urlpatterns = [
    path("projects/<int:project_id>/", views.project_page, name="project-page"),
    path("projects/<int:project_id>/live/", views.project_live, name="project-live"),
    path("projects/<int:project_id>/rounds/open/", views.open_round, name="project-open-round"),
    path("projects/<int:project_id>/runs/start/", views.start_run, name="project-start-run"),
    path("projects/<int:project_id>/import/", views.import_items, name="project-import"),
    path("projects/<int:project_id>/playground/", views.playground_page, name="project-playground"),
    path("runs/<int:run_id>/cancel/", views.cancel_run, name="run-cancel"),
    path("checkpoints/<int:checkpoint_id>/activate/", views.activate_checkpoint, name="checkpoint-activate-page"),
]

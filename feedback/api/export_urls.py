from django.urls import path

from .export_views import ExportView

urlpatterns = [
    path("projects/<int:project_id>/export/", ExportView.as_view(), name="project-export"),
]

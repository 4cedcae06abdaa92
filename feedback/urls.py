"""Root URL configuration: pages, the REST API and the schema."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("feedback.api.urls")),
    path("api/", include("feedback.api.export_urls")),
    path("api/", include("trainer.api.urls")),
    path("", include("trainer.page_urls")),
    path("", include("feedback.page_urls")),
]

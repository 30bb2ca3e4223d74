from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotation import views as annotation_views
from annotation.api import dashboard as annotation_dashboard
from config import health
from config.api_docs import RedocView

api_v1 = [
    path("", include("taxonomy.urls")),
    path("", include("annotation.api.images")),
    path("", include("annotation.urls")),
    path("", include("annotation.api.research_urls")),
    path("", include("workers.urls")),
    path("", include("export.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", RedocView.as_view(url_name="schema"), name="api-redoc"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("metrics", annotation_dashboard.metrics, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path("media/<path:name>", annotation_views.media_file, name="media-file"),
    path("", include("frontend.urls")),
]

# Outages met outside a view (a middleware, the session save) answer 503 with a sentence too; a URL no route
# matches, or a request refused before any view, answers the API in JSON.
handler500 = "config.api_errors.server_error"
handler404 = "config.api_errors.not_found"
handler400 = "config.api_errors.bad_request"

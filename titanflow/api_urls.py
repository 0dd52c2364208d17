"""The integrators' API: each app contributes its routes under /api/."""

from django.urls import include, path

urlpatterns = [
    path("", include("templates_app.api_urls")),
    path("", include("campaigns.api_urls")),
    path("", include("inbox.api_urls")),
]

from django.urls import include, path

urlpatterns = [
    path("", include("campaigns.api.setup_urls")),
    path("", include("campaigns.api.lifecycle_urls")),
]

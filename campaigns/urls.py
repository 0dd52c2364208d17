from django.urls import include, path

urlpatterns = [
    path("", include("campaigns.views.wizard_urls")),
    path("", include("campaigns.views.detail_urls")),
    path("", include("campaigns.views.actions_urls")),
    path("", include("campaigns.ab.urls")),
]

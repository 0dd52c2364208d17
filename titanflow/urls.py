from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView

from titanflow import people, views
from titanflow.api_docs import api_docs


@require_GET
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("audit/", people.audit_log, name="audit-log"),
    path("users/", people.user_list, name="user-list"),
    path("users/<int:pk>/role/", people.user_role, name="user-role"),
    path("tokens/", people.token_page, name="tokens"),
    path("tokens/new/", people.token_create, name="token-create"),
    path("tokens/revoke/", people.token_revoke, name="token-revoke"),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("api/", include("titanflow.api_urls")),
    path("assets/", include("templates_app.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("inbox/", include("inbox.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("r/", include("campaigns.clicks.urls")),
]

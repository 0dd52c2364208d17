"""Who may see what: marketers use the app, staff use the admin, Meta and integrators use
their own authentication (signed webhooks, API tokens)."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseForbidden
from rest_framework.permissions import BasePermission

# Paths that authenticate by other means; everything else needs a logged-in marketer.
_SELF_AUTHENTICATED = ("/admin/", "/api/", "/webhooks/", "/static/", "/healthz")
_OPEN = ("/accounts/login/",)


def is_marketer(user) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_is_marketer", None)
    if cached is None:
        cached = user.groups.filter(name=settings.MARKETER_GROUP).exists()
        user._is_marketer = cached
    return cached


class LoginRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(_SELF_AUTHENTICATED) or path.startswith(_OPEN):
            return self.get_response(request)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if not is_marketer(request.user):
            return HttpResponseForbidden(
                "This account is not in the marketer group. Ask an administrator for access."
            )
        return self.get_response(request)


class IsMarketer(BasePermission):
    message = "Only members of the marketer group may use the API."

    def has_permission(self, request, view):
        return is_marketer(request.user)

"""The login wall: every page needs a logged-in user with a role; the admin, the API and the
webhooks authenticate by their own means (staff login, API tokens, Meta's signatures)."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from titanflow.access import refusal, role_of

_SELF_AUTHENTICATED = ("/admin/", "/api/", "/webhooks/", "/static/", "/healthz")
# Recipients follow tracked links (/r/<token>) without an account; the token is the key.
_OPEN = ("/accounts/login/", "/r/")
# Someone without a role can still leave.
_ANY_USER = ("/accounts/logout/",)


class LoginRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(_SELF_AUTHENTICATED + _OPEN):
            return self.get_response(request)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if role_of(request.user) is None and not path.startswith(_ANY_USER):
            context = {"exception": refusal(request.user, "view")}
            return render(request, "403.html", context, status=403)
        return self.get_response(request)

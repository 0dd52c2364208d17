"""The API's browsable documentation: Swagger UI (vendored) over /api/schema/, for a logged-in
user; their session authenticates the schema and any request tried from the page."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.views.decorators.http import require_GET

from titanflow.access import refusal, role_of


@require_GET
def api_docs(request):
    # Under /api/, which the login wall leaves to each view: the check is made here.
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
    if role_of(request.user) is None:
        return render(request, "403.html", {"exception": refusal(request.user, "view")}, status=403)
    return render(request, "api_docs.html")

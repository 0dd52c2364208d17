"""Pages about people rather than campaigns: the audit log (admins) and one's own API token."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authtoken.models import Token

from titanflow.access import requires
from titanflow.audit import audit_record
from titanflow.models import AuditEntry

AUDIT_PAGE_SIZE = 50


@require_GET
@requires("audit.view")
def audit_log(request):
    username = request.GET.get("user", "").strip()
    action = request.GET.get("action", "").strip()
    entries = AuditEntry.objects.order_by("-at", "-id")
    if username:
        entries = entries.filter(username=username)
    if action:
        entries = entries.filter(action=action)
    context = {
        "page": Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page")),
        "username": username,
        "action": action,
        "actions": AuditEntry.objects.order_by("action")
        .values_list("action", flat=True)
        .distinct(),
    }
    return render(request, "audit/log.html", context)


@require_GET
@requires("token.manage")
def token_page(request):
    token = Token.objects.filter(user=request.user).first()
    return render(request, "tokens.html", {"token": token})


@require_POST
@requires("token.manage")
def token_create(request):
    """A new key, replacing any old one; shown on this response only and never again.

    The one POST that renders instead of redirecting: a redirect would have to carry the key
    through the session to show it.
    """
    with transaction.atomic():
        replaced = Token.objects.filter(user=request.user).delete()[0] > 0
        token = Token.objects.create(user=request.user)
        # The user, not the token, is the object: a token's pk and repr are its key.
        action = "token.rotate" if replaced else "token.create"
        audit_record(user=request.user, action=action, obj=request.user, via="page")
    return render(request, "tokens.html", {"token": token, "new_key": token.key})


@require_POST
@requires("token.manage")
def token_revoke(request):
    with transaction.atomic():
        if Token.objects.filter(user=request.user).delete()[0]:
            audit_record(user=request.user, action="token.revoke", obj=request.user, via="page")
    messages.success(request, "Your API token is revoked: calls made with it are refused.")
    return redirect("tokens")

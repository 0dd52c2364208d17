"""Pages about people rather than campaigns: users and their roles and the audit log (admins),
and one's own API token (everyone)."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authtoken.models import Token

from titanflow.access import ROLES, group_name, requires, role_in
from titanflow.audit import audit_record
from titanflow.models import AuditEntry
from titanflow.users import user_set_role

AUDIT_PAGE_SIZE = 50
USERS_PAGE_SIZE = 50
NO_ROLE = "none"


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(role, role) for role in ROLES] + [(NO_ROLE, "no role")])


@require_GET
@requires("user.manage")
def user_list(request):
    role_groups = Group.objects.filter(name__in=[group_name(role) for role in ROLES])
    users = (
        get_user_model()
        .objects.prefetch_related(Prefetch("groups", queryset=role_groups, to_attr="role_groups"))
        .order_by("username", "id")
    )
    page = Paginator(users, USERS_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(user, _role_from(user)) for user in page.object_list]
    return render(request, "users.html", {"page": page, "rows": rows, "roles": RoleForm()})


def _role_from(user) -> str:
    # Not role_of: it would query each user's groups again; the prefetch already holds them.
    if user.is_superuser:
        return "admin (superuser)"
    return role_in(group.name for group in user.role_groups) or NO_ROLE


@require_POST
@requires("user.manage")
def user_role(request, pk: int):
    user = get_object_or_404(get_user_model(), pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect("user-list")
    role = form.cleaned_data["role"]
    if user == request.user and role != "admin":
        messages.error(request, "You cannot take your own admin role away; ask another admin.")
        return redirect("user-list")
    user_set_role(user=user, role=None if role == NO_ROLE else role, by=request.user, via="page")
    messages.success(request, f"{user.get_username()} is now {form.cleaned_data['role']}.")
    return redirect("user-list")


@require_GET
@requires("audit.view")
def audit_log(request):
    # PostgreSQL refuses NUL in a text parameter; no username or action holds one anyway.
    username = request.GET.get("user", "").replace("\x00", "").strip()
    action = request.GET.get("action", "").replace("\x00", "").strip()
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

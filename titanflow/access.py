"""Who may do what: one place for pages, the API and the scoping of querysets.

Three roles, each a Django group: admins do everything (WhatsApp accounts, their access tokens and
app secrets, number rates, users, the audit log); marketers build and run their own campaigns,
sync assets and answer the shared inbox; viewers read and change nothing. Superusers are admins.
Which objects a marketer reaches is the models' business (`Campaign.objects.visible_to(user)`);
what a role may do at all is `can()`.
"""

from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

ADMIN = "admin"
MARKETER = "marketer"
VIEWER = "viewer"
ROLES = (ADMIN, MARKETER, VIEWER)  # strongest first: a user in two groups gets the stronger

_EVERYONE = frozenset(ROLES)
_WRITERS = frozenset({ADMIN, MARKETER})
_ADMINS = frozenset({ADMIN})
RULES = {
    "view": _EVERYONE,
    # A token only ever carries its owner's role, so a viewer's token is a read-only token.
    "token.manage": _EVERYONE,
    "campaign.create": _WRITERS,
    "campaign.change": _WRITERS,
    "inbox.reply": _WRITERS,
    "assets.sync": _WRITERS,
    "account.manage": _ADMINS,
    "phone.rate": _ADMINS,
    "audit.view": _ADMINS,
    "user.manage": _ADMINS,
    # What an API write that declares no action needs: nobody decided, so only admins.
    "undeclared": _ADMINS,
}


def group_name(role: str) -> str:
    return {
        ADMIN: settings.ADMIN_GROUP,
        MARKETER: settings.MARKETER_GROUP,
        VIEWER: settings.VIEWER_GROUP,
    }[role]


def role_of(user) -> str | None:
    """The user's strongest role, or None: no role means no access to the app at all."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    if not hasattr(user, "_titanflow_role"):
        user._titanflow_role = role_in(user.groups.values_list("name", flat=True))
    return user._titanflow_role


def role_in(group_names) -> str | None:
    """The strongest role among these group names."""
    names = set(group_names)
    return next((role for role in ROLES if group_name(role) in names), None)


def can(user, action: str) -> bool:
    return role_of(user) in RULES[action]


def requires(action: str):
    """View decorator: 403 unless the user's role allows `action`."""
    if action not in RULES:  # fail at import, not at the first request
        raise KeyError(f"Unknown access action {action!r}")

    def decorator(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            if not can(request.user, action):
                raise PermissionDenied(refusal(request.user, action))
            return view(request, *args, **kwargs)

        return checked

    return decorator


def refusal(user, action: str) -> str:
    if role_of(user) is None:
        return "This account has no role in TitanFlow. Ask an administrator for access."
    if role_of(user) == VIEWER:
        return "Viewers can look but not change anything."
    return "Only administrators may do this."


class RolePermission(BasePermission):
    """The API's default: reading needs a role; writing needs the view's declared action.

    A view names its write action in `access_action`, or per viewset action in
    `access_actions` (`{"create": "account.manage"}`); a write that names none is "undeclared"
    (admin-only), so a new endpoint is closed until someone decides who may use it.
    """

    def has_permission(self, request, view):
        action = "view" if request.method in SAFE_METHODS else self._write_action(view)
        allowed = can(request.user, action)
        if not allowed:
            self.message = refusal(request.user, action)
        return allowed

    @staticmethod
    def _write_action(view) -> str:
        per_action = getattr(view, "access_actions", {})
        return per_action.get(getattr(view, "action", None)) or getattr(
            view, "access_action", "undeclared"
        )

"""People and their roles: creating a user in a role and moving a user between roles, audited."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from titanflow.access import ROLES, group_name, role_of
from titanflow.audit import audit_record


@transaction.atomic
def user_create(*, username: str, email: str, password: str, role: str, by=None, via: str):
    """Raises ValidationError for a weak password, ValueError for a taken name or unknown role."""
    User = get_user_model()
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; one of: {', '.join(ROLES)}.")
    if User.objects.filter(username=username).exists():
        raise ValueError(f"A user named {username!r} already exists.")
    user = User(username=username, email=email)
    validate_password(password, user)
    user.set_password(password)
    user.save()
    _join(user, role)
    audit_record(user=by, action="user.create", obj=user, changes={"role": role}, via=via)
    return user


@transaction.atomic
def user_set_role(*, user, role: str | None, by=None, via: str) -> None:
    """Puts the user in exactly one role group (or none, which locks them out of the app)."""
    if role is not None and role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; one of: {', '.join(ROLES)}.")
    before = role_of(user) if not user.is_superuser else "admin (superuser)"
    user.groups.remove(*Group.objects.filter(name__in=[group_name(r) for r in ROLES]))
    if role is not None:
        _join(user, role)
    user.__dict__.pop("_titanflow_role", None)
    changes = {"role": [before, role]}
    audit_record(user=by, action="user.role", obj=user, changes=changes, via=via)


def _join(user, role: str) -> None:
    user.groups.add(Group.objects.get_or_create(name=group_name(role))[0])

"""The Django admin writes a LogEntry for every add, change and delete; the audit log mirrors it,
so changes made there are read in the same place as those made on pages and through the API."""

import json
from functools import wraps

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntryManager
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from titanflow.models import AuditEntry

_ACTIONS = {ADDITION: "admin.add", CHANGE: "admin.change", DELETION: "admin.delete"}


def connect() -> None:
    # Not a post_save receiver: the admin's bulk "delete selected" logs with bulk_create, which
    # sends no signal. Every admin log goes through log_actions, so that is where to listen.
    if not getattr(LogEntryManager.log_actions, "mirrored", False):
        LogEntryManager.log_actions = _mirrored(LogEntryManager.log_actions)


def _mirrored(log_actions):
    @wraps(log_actions)
    def log_and_mirror(self, user_id, queryset, action_flag, *args, **kwargs):
        logged = log_actions(self, user_id, queryset, action_flag, *args, **kwargs)
        entries = logged if isinstance(logged, list) else [logged]
        username = get_user_model().objects.filter(pk=user_id).values_list("username", flat=True)
        AuditEntry.objects.bulk_create(
            [_audit_entry(entry, username.first() or "") for entry in entries]
        )
        return logged

    log_and_mirror.mirrored = True
    return log_and_mirror


def _audit_entry(entry, username: str) -> AuditEntry:
    content_type = ContentType.objects.get_for_id(entry.content_type_id)
    object_repr = entry.object_repr
    if content_type.app_label == "authtoken":
        object_repr = f"API token of user {entry.object_id}"  # a token's repr is its key
    return AuditEntry(
        user_id=entry.user_id,
        username=username,
        action=_ACTIONS.get(entry.action_flag, "admin.other"),
        via=AuditEntry.Via.ADMIN,
        object_type=f"{content_type.app_label}.{content_type.model}",
        object_id=str(entry.object_id or "")[:64],
        object_repr=object_repr[:200],
        # Django's change message names the changed fields, never their values.
        changes={"admin": _message(entry.change_message)},
    )


def _message(change_message: str):
    try:
        return json.loads(change_message or "[]")
    except ValueError:
        return change_message

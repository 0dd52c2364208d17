"""The audit log's one writer: every state change a person makes goes through `audit_record`."""

from titanflow.models import AuditEntry

# Values of these fields never reach the log; that they changed does.
SECRET_FIELDS = frozenset({"access_token", "app_secret", "password", "key", "token"})


def audit_record(
    *, user, action: str, obj=None, changes: dict | None = None, via: str, obj_id=None
):
    """Write one entry about `obj` (a model instance or None).

    `obj_id` names an object that is already deleted (Django clears a deleted instance's pk).
    """
    person = user if user is not None and user.is_authenticated else None
    return AuditEntry.objects.create(
        user=person,
        username=person.get_username() if person else "",
        action=action,
        via=via,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj_id if obj_id is not None else getattr(obj, "pk", None) or ""),
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=redact(changes or {}),
    )


def redact(changes: dict) -> dict:
    """Secrets become "changed"; an empty secret (left unchanged) is left out."""
    return {
        name: "changed" if name in SECRET_FIELDS else value
        for name, value in changes.items()
        if value or name not in SECRET_FIELDS
    }

from django.db import transaction

from campaigns.models import Contact, OptOut


def optout_record(*, phone: str, reason: str, source: str = "") -> bool:
    """Adds `phone` (E.164) to the opt-out list and skips it in campaigns that have not sent to
    it yet. Returns True when the number was not opted out before."""
    with transaction.atomic():
        _, created = OptOut.objects.get_or_create(
            phone=phone, defaults={"reason": reason, "source": source[:255]}
        )
        Contact.objects.filter(phone=phone, state=Contact.State.PENDING).update(
            state=Contact.State.SKIPPED, skip_reason="opted_out"
        )
    return created


def optout_remove(*, phone: str) -> bool:
    deleted, _ = OptOut.objects.filter(phone=phone).delete()
    return bool(deleted)

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from webhooks.models import WebhookEvent
from webhooks.processor import deliveries_process


class Command(BaseCommand):
    help = (
        "Processes stored webhook deliveries again (all of them, or those received since a "
        "time). Processing is idempotent: replaying twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO time, e.g. 2026-11-23T18:00:00Z")
        parser.add_argument("--all", action="store_true", help="Every stored delivery.")

    def handle(self, *args, since=None, all=False, **options):
        if not since and not all:
            raise CommandError("Say which deliveries to replay: --since ISO-TIME or --all.")
        events = WebhookEvent.objects.all()
        if since:
            events = events.filter(received_at__gte=_parse_time(since))
        queued = events.update(processed_at=None, attempts=0, error="")
        self.stdout.write(f"Replaying {queued} deliveries...")
        total = 0
        while (done := deliveries_process(time_budget_s=60).deliveries) > 0:
            total += done
        failed = events.exclude(error="").count()
        self.stdout.write(self.style.SUCCESS(f"Processed {total} deliveries; {failed} failed."))


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(f"--since is not an ISO time: {text!r}") from exc
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)

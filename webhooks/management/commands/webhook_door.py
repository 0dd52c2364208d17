"""`manage.py webhook_door`: serve Meta's webhook URL until SIGTERM (the Procfile's `door`)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from titanflow.simulator.loops import loop_run
from webhooks.door import WEBHOOK_PATH
from webhooks.door_server import door_serve


class Command(BaseCommand):
    help = (
        "Serve Meta's webhook URL (GET: the subscription check; POST: signed deliveries, each "
        "answered once it is committed to the database) in one event loop; the web server "
        "serves the same URL, more slowly. Several doors may listen on one port to share the "
        "load."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8001, help="port; 0 picks a free one")

    def handle(self, *args, host, port, **options):
        if not settings.META_APP_SECRET:
            self.stderr.write(
                "META_APP_SECRET is not set: only deliveries signed with an account's own app "
                "secret are accepted"
            )

        def ready(address):
            bound_host, bound_port = address[:2]
            self.stdout.write(
                f"webhook door listening on http://{bound_host}:{bound_port}{WEBHOOK_PATH}"
            )
            self.stdout.flush()

        loop_run(door_serve(host=host, port=port, ready=ready))

from templates_app.management.commands._sync import SyncCommand


class Command(SyncCommand):
    help = "Fetch each account's phone numbers (quality, status, throughput, limit) from Meta."
    parts = ("phones",)

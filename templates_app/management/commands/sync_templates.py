from templates_app.management.commands._sync import SyncCommand


class Command(SyncCommand):
    help = "Fetch every page of each account's message templates from Meta and store them."
    parts = ("templates",)

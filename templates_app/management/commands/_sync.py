"""What `sync_templates` and `sync_phone_numbers` share: pick accounts, sync, print progress."""

from django.core.management.base import BaseCommand, CommandError

from templates_app.models import WhatsAppAccount
from templates_app.services.sync import SyncResult, accounts_sync


class LinePrinter:
    """Prints a sync's progress messages as lines prefixed with the account."""

    def __init__(self, command: BaseCommand, account: WhatsAppAccount):
        self.command, self.account = command, account

    def update(self, **fields) -> None:
        if fields.get("message") and fields.get("state") != "done":
            self.command.stdout.write(f"{self.account.waba_id}: {fields['message']}")


class SyncCommand(BaseCommand):
    parts: tuple[str, ...] = ()

    def add_arguments(self, parser):
        parser.add_argument(
            "--account",
            metavar="WABA_ID",
            action="append",
            help="Sync only this WhatsApp account (repeatable); every account by default.",
        )
        parser.add_argument("--workers", type=int, default=4, help="Accounts synced at once (≤4).")

    def handle(self, *args, account=None, workers=4, **options):
        accounts = self._accounts(account)
        self.stdout.write(f"Syncing {len(accounts)} account(s)…")
        results = accounts_sync(
            accounts=accounts,
            parts=self.parts,
            max_workers=workers,
            progress_for=lambda acc: LinePrinter(self, acc),
            on_done=self._print_result,
        )
        failed = [result for result in results if not result.ok]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} account(s) did not sync.")

    def _accounts(self, waba_ids: list[str] | None) -> list[WhatsAppAccount]:
        accounts = WhatsAppAccount.objects.order_by("name", "id")
        if not waba_ids:
            return list(accounts)
        found = list(accounts.filter(waba_id__in=waba_ids))
        missing = set(waba_ids) - {account.waba_id for account in found}
        if missing:
            raise CommandError(f"No account with WABA id {', '.join(sorted(missing))}.")
        return found

    def _print_result(self, result: SyncResult) -> None:
        if result.ok:
            self.stdout.write(self.style.SUCCESS(f"{result.waba_id}: {result.summary()}"))
        else:
            self.stderr.write(f"{result.waba_id}: {result.error}")

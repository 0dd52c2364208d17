import sys
import time
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from campaigns.importing import ImportFileError, import_start
from campaigns.importing.service import import_process
from campaigns.models import Campaign

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Import a contact list (.csv, .xlsx, .csv.gz, .zip) into a draft campaign, in process."

    def add_arguments(self, parser):
        parser.add_argument("campaign", type=int, help="Campaign id")
        parser.add_argument(
            "file", type=Path, help="The list to import: .csv, .xlsx, .csv.gz or .zip"
        )
        parser.add_argument("--phone-column", default="", help="Guessed from the header if omitted")
        parser.add_argument(
            "--name-column", default="", help="Column holding the contact's name (optional)"
        )
        parser.add_argument(
            "--region",
            default="",
            help="Region of numbers without a country code (AE, GB); default DEFAULT_PHONE_REGION",
        )

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(pk=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No campaign with id {options['campaign']}.")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        started = time.monotonic()
        try:
            with open(path, "rb") as handle:
                import_start(
                    campaign=campaign,
                    uploaded_file=File(handle, name=path.name),
                    phone_column=options["phone_column"],
                    name_column=options["name_column"],
                    phone_region=options["region"],
                    queue=False,
                )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        import_process(campaign_id=campaign.pk, on_progress=self._progress(started))
        self._report(campaign, started)

    def _progress(self, started: float):
        def show(done: int, estimate: int) -> None:
            share = min(done / estimate, 1.0) if estimate else 0.0
            filled = int(share * BAR_WIDTH)
            rate = done / max(time.monotonic() - started, 1e-6)
            line = (
                f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} "
                f"{done:,} of ~{estimate:,} rows, {rate:,.0f} rows/s"
            )
            self.stdout.write(line, ending="")
            sys.stdout.flush()

        return show

    def _report(self, campaign: Campaign, started: float) -> None:
        campaign.refresh_from_db()
        self.stdout.write("")
        if campaign.status == Campaign.Status.FAILED:
            raise CommandError(f"Import failed: {campaign.import_error}")
        report = campaign.import_report
        seconds = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {report['rows']:,} rows in {seconds:.1f} s: "
                f"{report['valid']:,} to message, {campaign.skipped_count:,} skipped."
            )
        )
        for reason, count in report["skipped"].items():
            if count:
                self.stdout.write(f"  {reason}: {count:,}")

"""The import benchmark: generate a contact list, import it, report rows/s and peak memory.

Run each size in its own process (peak RSS is a per-process high-water mark), e.g.
    python manage.py shell -c "from campaigns.importing.bench import import_benchmark as b;
    print(b(1_000_000))"
"""

import csv
import random
import resource
import tempfile
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import connection

from campaigns.importing.load import import_run
from campaigns.importing.service import import_start
from campaigns.models import Campaign

HEADER = ["phone", "name", "city", "coupon"]
PREFIXES = [50, 52, 54, 55, 56, 58]  # UAE mobile ranges
CITIES = ["Dubai", "Abu Dhabi", "Sharjah", "Ajman", "Al Ain"]


def write_contacts_csv(path: Path, rows: int, *, seed: int = 7) -> None:
    """A messy list as marketers upload them: UAE mobiles in international, national and spaced
    formats, one row in ten repeating an earlier number in another format, one in fifty not a
    number at all, and a few blank lines."""
    rng = random.Random(seed)
    seen: list[int] = []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            if n % 10 == 9 and seen:
                number = rng.choice(seen)
            else:
                number = rng.choice(PREFIXES) * 10_000_000 + rng.randrange(10_000_000)
                if len(seen) < 10_000:
                    seen.append(number)
            phone = _formatted(number, n)
            if n % 50 == 49:
                phone = rng.choice(["12345", "n/a", "+971 50", "0000000000000000"])
            if n % 997 == 0:
                writer.writerow([])
            writer.writerow([phone, f"Name {n}", CITIES[n % 5], f"C{n:07d}"])


def _formatted(number: int, n: int) -> str:
    digits = str(number)
    return [
        f"+971{digits}",
        f"0{digits}",
        f"0{digits[:2]} {digits[2:5]} {digits[5:]}",
        f"00971-{digits[:2]}-{digits[2:]}",
        f"971{digits}",
    ][n % 5]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _contacts_analysed() -> bool:
    """Whether the planner had statistics for the contacts (a fresh table has none)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) > 0 FROM pg_stats WHERE tablename = 'campaigns_contact'")
        return cursor.fetchone()[0]


def import_benchmark(rows: int = 1_000_000) -> dict:
    """Imports a generated `rows`-row CSV through the real path and returns the figures."""
    owner, _ = get_user_model().objects.get_or_create(username="import-benchmark")
    campaign = Campaign.objects.create(name=f"Import benchmark {rows}", owner=owner)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contacts.csv"
        write_contacts_csv(path, rows)
        size = path.stat().st_size
        rss_before = _rss_mb()
        analysed = _contacts_analysed()
        # Timed from the upload, as the wizard and the API run it (the task calls import_run).
        started = time.perf_counter()
        with open(path, "rb") as handle:
            import_start(
                campaign=campaign, uploaded_file=File(handle, name="contacts.csv"), queue=False
            )
        import_run(campaign_id=campaign.pk)
        seconds = time.perf_counter() - started
    campaign.refresh_from_db()
    result = {
        "rows": rows,
        "file_mb": round(size / 1e6, 1),
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "status": campaign.status,
        "imported": campaign.total_count,
        "skipped": campaign.import_report.get("skipped", {}),
        "peak_rss_mb": round(_rss_mb(), 1),
        "peak_rss_growth_mb": round(_rss_mb() - rss_before, 1),
        "contact_table_had_statistics": analysed,
    }
    campaign.source_file.delete(save=False)
    with connection.cursor() as cursor:  # the ORM's cascade would load every contact
        cursor.execute("DELETE FROM campaigns_contact WHERE campaign_id = %s", [campaign.pk])
    campaign.delete()
    return result

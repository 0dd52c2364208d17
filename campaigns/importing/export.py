"""The skipped rows as CSV: the original columns plus the row number and the reason."""

import csv
import io
from collections.abc import Iterator

from campaigns.models import Campaign, Contact

REASON_TEXT = {
    "invalid_phone": "Not a valid phone number",
    "duplicate_in_file": "The same number appears earlier in the file",
    "opted_out": "The number opted out of marketing messages",
    "recently_messaged": "Messaged by a campaign within the dedup window",
    "missing_variable": "A value no chosen template can do without is empty",
}


def skipped_rows_csv(*, campaign: Campaign) -> Iterator[str]:
    """Streams CSV lines, a few thousand rows per query, in the file's row order."""
    columns = list(campaign.columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "reason", "explanation", *columns])
    rows = (
        Contact.objects.filter(campaign=campaign, state=Contact.State.SKIPPED)
        .order_by("row_number", "id")
        .values_list("row_number", "skip_reason", "variables")
        .iterator(chunk_size=5000)
    )
    for row_number, reason, variables in rows:
        explanation = REASON_TEXT.get(reason, reason)
        writer.writerow([row_number, reason, explanation, *(variables.get(c, "") for c in columns)])
        if buffer.tell() > 64 * 1024:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text

"""CSV the app writes: the one guard against spreadsheet formulas every export uses, and the
skipped rows (the original columns plus the row number and the reason)."""

import csv
import io
import re
from collections.abc import Iterator

from campaigns.models import Campaign, Contact

REASON_TEXT = {
    "invalid_phone": "Not a valid phone number",
    "duplicate_in_file": "The same number appears earlier in the file",
    "opted_out": "The number opted out of marketing messages",
    "recently_messaged": "Messaged by a campaign within the dedup window",
    "missing_variable": "A value no chosen template can do without is empty",
}


# Spreadsheets run a cell starting with these as a formula (tab and CR too, after trimming).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# ...but a signed number or phone (+971 50 123-4567, -5) is data, and stays readable.
_SIGNED_NUMBER = re.compile(r"[+-][\d\s().,-]*")


def spreadsheet_safe(value) -> str:
    """The cell as text that Excel, LibreOffice and Google Sheets show rather than run: a cell
    that would start a formula gets a leading apostrophe (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS) and not _SIGNED_NUMBER.fullmatch(text):
        return "'" + text
    return text


def skipped_rows_csv(*, campaign: Campaign) -> Iterator[str]:
    """Streams CSV lines, a few thousand rows per query, in the file's row order."""
    columns = list(campaign.columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "reason", "explanation", *map(spreadsheet_safe, columns)])
    rows = (
        Contact.objects.filter(campaign=campaign, state=Contact.State.SKIPPED)
        .order_by("row_number", "id")
        .values_list("row_number", "skip_reason", "variables")
        .iterator(chunk_size=5000)
    )
    for row_number, reason, variables in rows:
        explanation = REASON_TEXT.get(reason, reason)
        cells = (spreadsheet_safe(variables.get(column, "")) for column in columns)
        writer.writerow([row_number, reason, explanation, *cells])
        if buffer.tell() > 64 * 1024:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text

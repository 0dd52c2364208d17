"""CSV the app writes: the one guard against spreadsheet formulas every export uses; each
recipient's result with the list's own columns; the skipped rows (the original columns plus the
row number and the reason)."""

import csv
import io
import re
from collections.abc import Iterator
from itertools import groupby

from django.http import StreamingHttpResponse

from campaigns.models import Campaign, Contact

MARKETING_CAP_CODE = 131049
PER_USER_HELD = "held by Meta's per-user limit"
REASON_TEXT = {
    "invalid_phone": "Not a valid phone number",
    "duplicate_in_file": "The same number appears earlier in the file",
    "opted_out": "The number opted out of marketing messages",
    "recently_messaged": "Messaged by a campaign within the dedup window",
    "missing_variable": "A value no chosen template can do without is empty",
    "us_marketing": "Meta does not deliver marketing templates to US (+1) numbers",
    "expired": "The campaign's deadline passed before it could be sent",
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


RESULT_COLUMNS = {
    "id": "contact_id",
    "phone": "phone",
    "name": "name",
    "state": "state",
    "skip_reason": "skip_reason",
    "attempts": "attempts",
    "last_error_code": "error_code",
    "last_error": "error",
    "messages__wamid": "wamid",
    "messages__template__name": "template",
    "messages__phone__display_phone_number": "sender",
    "messages__status": "message_status",
    "messages__error_code": "message_error_code",
    "messages__error_title": "message_error",
    "messages__sent_at": "sent_at",
    "messages__delivered_at": "delivered_at",
    "messages__read_at": "read_at",
    "messages__replied_at": "replied_at",
    "messages__failed_at": "failed_at",
}
RESULTS_CHUNK = 2000


def results_csv_response(*, campaign: Campaign) -> StreamingHttpResponse:
    """Every recipient's result, streamed (any size downloads); the page and the API share it."""
    response = StreamingHttpResponse(
        results_csv(campaign=campaign), content_type="text/csv; charset=utf-8"
    )
    filename = f"campaign-{campaign.pk}-results.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def results_csv(*, campaign: Campaign) -> Iterator[str]:
    """One line per contact, its latest message, then the list's own columns as uploaded.

    Every cell, headers included, goes through `spreadsheet_safe`, the same rule for all."""
    columns = list(campaign.columns or [])
    ours = {*RESULT_COLUMNS.values(), "explanation"}
    # A list column named like one of ours ("phone", "name") keeps its cells under "list_...".
    headers = [
        *RESULT_COLUMNS.values(),
        "explanation",
        *(f"list_{c}" if c in ours else c for c in columns),
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([spreadsheet_safe(h) for h in headers])
    rows = (
        Contact.objects.filter(campaign=campaign)
        .order_by("id", "messages__id")
        .values_list(*RESULT_COLUMNS, "variables")
        .iterator(chunk_size=RESULTS_CHUNK)
    )
    # A contact retried with another template has several messages; its latest one is its result.
    for _, attempts in groupby(rows, key=lambda row: row[0]):
        *_, latest = attempts
        *result, variables = latest
        cells = [
            *result,
            _explanation(*result[3:5], result[6]),
            *((variables or {}).get(c) for c in columns),
        ]
        writer.writerow([_cell(value) for value in cells])
        if buffer.tell() > 64 * 1024:
            yield _drain(buffer)
    yield _drain(buffer)


def _explanation(state: str, skip_reason: str, error_code: int | None) -> str:
    """The contact's outcome in words where its state alone does not say it."""
    if state == Contact.State.SKIPPED:
        return REASON_TEXT.get(skip_reason, skip_reason)
    if error_code == MARKETING_CAP_CODE and state != Contact.State.SENT:
        held = state != Contact.State.FAILED
        return PER_USER_HELD if held else f"{PER_USER_HELD}, past its retries: not sent"
    return ""


def _cell(value) -> str:
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    return spreadsheet_safe(value)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text

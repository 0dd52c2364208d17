"""CSV the app writes never carries a live spreadsheet formula from an uploaded file."""

import csv
import io

import pytest

from campaigns.importing.export import skipped_rows_csv, spreadsheet_safe
from campaigns.models import Contact
from tests.factories import CampaignFactory, ContactFactory

HOSTILE = [
    '=HYPERLINK("http://evil.test","click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_cell_that_would_start_a_formula_is_quoted(value):
    assert spreadsheet_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["+971 50 123-4567", "-5", "Ana", "", "a=b", "12.5"])
def test_numbers_phones_and_plain_text_are_kept_as_they_are(value):
    assert spreadsheet_safe(value) == value


def test_the_skipped_rows_csv_quotes_every_hostile_cell_and_header(db):
    campaign = CampaignFactory(columns=["phone", "=note"])
    for row, value in enumerate(HOSTILE, start=2):
        ContactFactory(
            campaign=campaign,
            row_number=row,
            state=Contact.State.SKIPPED,
            skip_reason="invalid_phone",
            variables={"phone": value, "=note": "+971 50 123 4567"},
        )

    text = "".join(skipped_rows_csv(campaign=campaign))
    rows = list(csv.reader(io.StringIO(text)))

    assert rows[0] == ["row", "reason", "explanation", "phone", "'=note"]
    assert [row[3] for row in rows[1:]] == ["'" + value for value in HOSTILE]
    assert {row[4] for row in rows[1:]} == {"+971 50 123 4567"}

"""Reading the first rows of an upload and guessing which columns hold the phone and the name."""

import itertools
import re
from pathlib import Path

from campaigns.importing.phones import normalize_phone
from campaigns.importing.readers import open_table

PREVIEW_ROWS = 5
_PHONE_NAMES = re.compile(r"phone|mobile|msisdn|whats ?app|cell|tel|number|wa_?id", re.I)
_NAME_NAMES = re.compile(r"^(full[ _]?)?name$|first[ _]?name|customer|contact", re.I)


def read_head(path: Path, name: str, rows: int = PREVIEW_ROWS) -> tuple[list[str], list[list[str]]]:
    with open_table(path, name) as table:
        return table.header, [list(row) for row in itertools.islice(table.rows, rows)]


def guess_phone_column(header: list[str], sample: list[list[str]], region: str) -> str:
    """A column named like a phone, else the one whose sample values are most often numbers."""
    for column in header:
        if _PHONE_NAMES.search(column):
            return column
    best, best_hits = "", 0
    for index, column in enumerate(header):
        hits = sum(1 for row in sample if index < len(row) and normalize_phone(row[index], region))
        if hits > best_hits:
            best, best_hits = column, hits
    return best


def guess_name_column(header: list[str], phone_column: str) -> str:
    for column in header:
        if column != phone_column and _NAME_NAMES.search(column):
            return column
    return ""

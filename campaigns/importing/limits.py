"""The bounds an uploaded list must stay within, read from settings at each use (tests and
operators change them), and the sentence each refusal shows."""

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Limits:
    file_bytes: int
    inflated_bytes: int
    rows: int
    columns: int
    line_bytes: int
    field_bytes: int

    @classmethod
    def current(cls) -> "Limits":
        return cls(
            file_bytes=settings.IMPORT_MAX_BYTES,
            inflated_bytes=settings.IMPORT_MAX_INFLATED_BYTES,
            rows=settings.IMPORT_MAX_ROWS,
            columns=settings.IMPORT_MAX_COLUMNS,
            line_bytes=settings.IMPORT_MAX_LINE_BYTES,
            field_bytes=settings.IMPORT_MAX_FIELD_BYTES,
        )


def size_text(count: int) -> str:
    """1048576 → "1 MB"; limits are set in round binary units, so no decimals are needed."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if count >= scale:
            return f"{count / scale:,.0f} {unit}"
    return f"{count:,} bytes"


def too_large(limit: int) -> str:
    return f"The file is larger than {size_text(limit)}; split it into smaller files."


def too_large_inflated(limit: int) -> str:
    return (
        f"The compressed file unpacks to more than {size_text(limit)}; split it into smaller files."
    )


def too_many_rows(limit: int) -> str:
    return f"The file has more than {limit:,} rows; split it into files of at most {limit:,}."


def too_many_columns(count: int, limit: int) -> str:
    return f"The file has {count:,} columns; at most {limit:,} can be imported."


def line_too_long(line: int, limit: int) -> str:
    return f"Line {line:,} of the file is longer than {size_text(limit)}; is this a contact list?"


def field_too_long(row: int, limit: int) -> str:
    return f"Row {row:,} has a cell longer than {limit:,} characters."


def too_many_lines(limit: int) -> str:
    return f"The file has more than {limit:,} lines; split it into files of at most {limit:,} rows."

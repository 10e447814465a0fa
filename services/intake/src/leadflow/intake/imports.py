"""Import rules that are not about one contact: mapping suggestions from headers, who a row
identifies, and the history a row carries (outcome, amount, dates). Pure, no I/O.

A history import maps an ``outcome`` column: every row is then a lead from the past. Rows
whose outcome reads as converted/won become won deals (with the mapped amount), the others
closed-lost history; all of their events are flagged ``historical`` so that no service starts
an SLA clock, nurture, routing or a notification for them, while analytics counts them and
scoring learns from them. Dates come from the mapped columns; a file without dates gets the
import time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from leadflow.intake.domain import FieldError, HygieneError, is_blank

T = TypeVar("T")

# Import targets for history; ``created_at`` is when the lead was captured in the old system.
HISTORY_TARGETS: frozenset[str] = frozenset(
    {"outcome", "outcome.amount", "outcome.currency", "outcome.closed_at", "created_at"}
)

_WON = frozenset({"1", "true", "yes", "y", "won", "closed won", "closed-won", "converted",
                  "customer", "win"})  # fmt: skip
_NOT_WON = frozenset({"0", "false", "no", "n", "lost", "closed lost", "closed-lost",
                      "not converted", "unqualified", "disqualified", "loss", ""})  # fmt: skip

# Header synonyms (compared folded, without punctuation) -> target. The first match wins.
_SUGGESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contact.email", ("email", "e mail", "email address", "e mail address", "mail")),
    ("contact.phone", ("phone", "phone number", "telephone", "mobile", "mobile phone", "tel")),
    ("contact.first_name", ("first name", "firstname", "given name", "forename")),
    ("contact.last_name", ("last name", "lastname", "surname", "family name")),
    ("contact.company", ("company", "company name", "organisation", "organization", "account")),
    ("contact.title", ("title", "job title", "position", "role")),
    ("contact.website", ("website", "web site", "url", "company website")),
    ("contact.industry", ("industry", "sector")),
    ("contact.country", ("country", "country code")),
    ("contact.city", ("city", "town")),
    ("external_id", ("prospect id", "lead id", "external id", "record id", "contact id", "id")),
    ("source.utm_source", ("lead source", "source", "utm source")),
    ("source.utm_medium", ("lead origin", "medium", "utm medium")),
    ("source.utm_campaign", ("campaign", "utm campaign")),
    ("consent.do_not_email", ("do not email", "email opt out", "unsubscribed")),
    ("consent.marketing_opt_in", ("marketing opt in", "opt in", "email opt in")),
    ("outcome", ("converted", "outcome", "won", "is won", "status won", "stage won")),
    ("outcome.amount", ("amount", "deal amount", "deal value", "revenue", "value")),
    ("outcome.currency", ("currency", "currency code")),
    ("outcome.closed_at", ("close date", "closed date", "closed at", "won date", "converted at")),
    ("created_at", ("created date", "created at", "create date", "created", "lead date")),
    ("notes", ("notes", "note", "description")),
)


def _fold(header: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", header.casefold()).split())


def suggest_mapping(header: Sequence[str]) -> dict[str, str]:
    """A proposed column -> target mapping from the header's names (each target used once)."""
    by_synonym = {syn: target for target, syns in _SUGGESTIONS for syn in syns}
    proposed: dict[str, str] = {}
    used: set[str] = set()
    for column in header:
        target = by_synonym.get(_fold(column))
        if target is not None and target not in used:
            proposed[column] = target
            used.add(target)
    return proposed


@dataclass(frozen=True)
class History:
    """What a history row says happened: won (with amount) or closed without a deal."""

    won: bool
    amount: Decimal | None = None
    currency: str | None = None
    closed_at: datetime | None = None


def parse_outcome(value: object) -> bool:
    """True for a converted/won row; blank or any not-won word is False."""
    text = "" if is_blank(value) else " ".join(str(value).strip().casefold().split())
    if text in _WON:
        return True
    if text in _NOT_WON:
        return False
    raise ValueError(f"{value!r} is neither a won (1, yes, won, converted) nor a lost value")


_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d", "%d.%m.%Y",
                 "%d/%m/%Y", "%d/%m/%Y %H:%M")  # fmt: skip


def parse_date(value: object) -> datetime | None:
    """ISO 8601 first; then year-first, and day-first (``31/12/2024``, ``31.12.2024``) forms.
    Naive times are read as UTC."""
    if is_blank(value):
        return None
    text = str(value).strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"{text!r} is not a date (use ISO 8601, e.g. 2024-12-31)")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_amount(value: object) -> Decimal | None:
    """``1,234.50``, ``1.234,50``, ``$ 1200`` → a non-negative Decimal."""
    if is_blank(value):
        return None
    text = re.sub(r"[^\d.,-]", "", str(value))
    if "," in text and "." in text:
        text = (
            text.replace(",", "")
            if text.rfind(".") > text.rfind(",")
            else (text.replace(".", "").replace(",", "."))
        )
    elif "," in text:
        head, _, tail = text.rpartition(",")
        text = f"{head.replace(',', '')}.{tail}" if len(tail) != 3 else text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if amount < 0 or not amount.is_finite():
        raise ValueError(f"{value!r} is not a non-negative amount")
    return amount


def history_of(row: Mapping[str, str | None], columns: Mapping[str, str]) -> History | None:
    """The history a row carries when the import maps an ``outcome`` column, else None;
    raises ``HygieneError`` naming each bad history field."""
    by_target = {target: row.get(column) for column, target in columns.items()
                 if target in HISTORY_TARGETS}  # fmt: skip
    if not is_history_import(columns):
        return None
    errors: list[FieldError] = []
    won = _field(by_target, "outcome", parse_outcome, errors)
    amount = _field(by_target, "outcome.amount", parse_amount, errors)
    closed = _field(by_target, "outcome.closed_at", parse_date, errors)
    currency_raw = by_target.get("outcome.currency")
    currency = None if is_blank(currency_raw) else str(currency_raw).strip().upper()
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        errors.append(FieldError("outcome.currency", f"{currency_raw!r} is not an ISO 4217 code"))
    if errors:
        raise HygieneError(errors)
    return History(bool(won), amount, currency, closed)


def _field(
    values: Mapping[str, object],
    target: str,
    parse: Callable[[object], T],
    errors: list[FieldError],
) -> T | None:
    if target not in values:
        return None
    try:
        return parse(values[target])
    except ValueError as exc:
        errors.append(FieldError(target, str(exc)))
        return None


def created_at_of(row: Mapping[str, str | None], columns: Mapping[str, str]) -> datetime | None:
    """The capture date of a row in the old system (a mapped ``created_at``), or None;
    raises ``HygieneError``."""
    for column, target in columns.items():
        if target == "created_at":
            try:
                return parse_date(row.get(column))
            except ValueError as exc:
                raise HygieneError([FieldError("created_at", str(exc))]) from None
    return None


def is_history_import(columns: Mapping[str, str]) -> bool:
    return "outcome" in columns.values()


def identity_problem(email: str | None, phone: str | None, external_id: str | None) -> str | None:
    """A lead must be identifiable: by e-mail, phone, or the source system's id."""
    if email or phone or external_id:
        return None
    return "a row needs an email, a phone or an external id"

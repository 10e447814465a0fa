"""What intake answers, as schemas for its OpenAPI document (``responses=`` on each route).

The routes build their JSON by hand for speed (orjson, no response-model validation on the
hot path); these models only document the shape, and the fuzz test
(tests/acceptance/test_openapi_fuzz.py) checks every answer against them. Fields another
version may add are allowed (``extra="allow"``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Accepted(_Out):
    """An inquiry or web-form post taken in (202): which lead it is on now."""

    lead_id: str
    inquiry_id: str
    matched: bool
    match_reason: str | None = None


class ItemResult(_Out):
    """One item of a batch: accepted, duplicate, anonymous (held) or rejected, with why."""

    status: Literal["accepted", "duplicate", "anonymous", "rejected"]
    lead_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class ScanBatchResult(_Out):
    device_id: str | None
    event_id: str
    accepted: int
    duplicate: int
    rejected: int
    items: list[ItemResult]


class ActivityBatchResult(_Out):
    accepted: int
    anonymous: int
    duplicate: int
    rejected: int
    items: list[ItemResult]


class ImportStarted(_Out):
    import_id: str
    status: str
    columns: dict[str, Any] | None = None


class ImportRejection(_Out):
    row: int
    field: str | None
    reason: str


class ImportStatus(_Out):
    import_id: str
    status: str
    filename: str | None = None
    rows_read: int | None = None
    rows_total: int | None = None
    accepted: int | None = None
    rejected: int | None = None
    new_leads: int | None = None
    matched: int | None = None
    error: str | None = None
    columns: dict[str, Any] | None = None
    created_at: str
    finished_at: str | None = None
    rejected_rows: list[ImportRejection]


class LeadProfile(_Out):
    """A lead as intake knows it (personal fields blank once erased)."""

    lead_id: str
    stage: str | None = None
    contact: dict[str, Any]
    emails: list[str]
    consent: dict[str, Any] | None = None
    do_not_contact: bool
    account: dict[str, Any] | None = None
    flags: dict[str, Any] | None = None
    inquiries: int | None = None
    merged_into: str | None = None
    erased: bool
    created_at: str
    updated_at: str


class LeadList(_Out):
    items: list[LeadProfile]


class ConsentAnswer(_Out):
    lead_id: str
    changed: bool
    marketing_opt_in: bool | None = None
    do_not_contact: bool | None = None


class Erased(_Out):
    lead_id: str
    erased: list[str]


class Form(_Out):
    name: str
    form_key: str | None = None
    field_map: dict[str, str] = {}
    required: list[str] = []
    thank_you_url: str | None = None
    allowed_origins: list[str]
    campaign: str | None = None
    honeypot_field: str | None = None
    consent_text_version: str | None = None


class FormList(_Out):
    items: list[dict[str, Any]]


class ApiKeyIssued(_Out):
    key_id: str
    key: str
    name: str
    scopes: list[str]
    device_id: str | None = None
    prefix: str


class ApiKeyList(_Out):
    items: list[dict[str, Any]]


class Account(_Out):
    domain: str


class AccountList(_Out):
    items: list[dict[str, Any]]


def ok(model: type[BaseModel], status: int = 200) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route whose success answer is ``model``."""
    return {status: {"model": model}}

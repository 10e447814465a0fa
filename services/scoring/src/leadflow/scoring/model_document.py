"""The scoring model as a versioned document (``leadflow.events.documents``): stored in
``model_versions``, published as ``scoring.model_published`` on ``stream_id("scoring-model")``,
version 0 is the built-in model (``leadflow.scoring.builtin``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadflow.events.catalogue.scoring import ScoringModelPublished
from leadflow.events.documents import Document, DocumentKind
from leadflow.events.errors import Problem
from leadflow.scoring.builtin import default_model
from leadflow.scoring.domain import ModelInvalid, ScoringModel, validate_model


def invalid(exc: ModelInvalid, prefix: str = "") -> Problem:
    """422 naming every wrong rule (``fit_rules[3].attribute``), under ``prefix``."""
    errors = [{"field": prefix + e["field"], "message": e["message"]} for e in exc.errors]
    return Problem(422, "Invalid scoring model", str(exc), errors=errors)


def parse_model(data: Mapping[str, Any]) -> ScoringModel:
    """A publisher's model, checked as ``validate_model`` does (activity types included)."""
    try:
        return validate_model(data)
    except ModelInvalid as exc:
        raise invalid(exc) from exc


async def model_published(conn: Any, document: Document[ScoringModel]) -> ScoringModelPublished:
    return ScoringModelPublished(
        model_version=document.version,
        model=document.doc.model_dump(mode="json"),
        published_by=document.published_by,
        model_id=MODEL.stream,
    )


MODEL: DocumentKind[ScoringModel] = DocumentKind(
    name="scoring-model",
    table="model_versions",
    model=ScoringModel,
    event=model_published,
    title="scoring model",
    builtin=default_model,
    parse=parse_model,
    summary={"name": "doc->>'name'"},
)

"""Scoring's own API actions as commands: a dataclass per action and a pure ``decide_*``.

A route parses the request into a command, reads what the decision needs in its
transaction, asks ``decide_*`` (no I/O, no clock: plain values, unit-tested in
tests/unit/scoring/test_scoring_commands.py), carries the decision out and maps a refusal
(``CommandRefused``) to problem+json. Publishing a model is the kernel's document route
(``model_document``); what scoring decides about leads is ``decisions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leadflow.events.errors import CommandRefused
from leadflow.scoring.domain import ModelInvalid, NurtureTrack, validate_track
from leadflow.scoring.predictive import beats


@dataclass(frozen=True, slots=True)
class PutTrack:
    """Create or replace the nurture track ``track_id`` with ``body``."""

    track_id: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RetireTrack:
    """No new enrolments on ``track_id``; enrolled leads finish at their next touch."""

    track_id: str


@dataclass(frozen=True, slots=True)
class TrainPredictive:
    """Train a predictive model on the outcomes; promote it only if it beats the current."""

    holdout_fraction: float = 0.2
    regularisation: float = 0.1
    trained_by: str | None = None


@dataclass(frozen=True, slots=True)
class Incumbent:
    """The promoted predictive model, measured on the new model's holdout."""

    version: int
    auc: float


@dataclass(frozen=True, slots=True)
class Promotion:
    promoted: bool
    metrics: dict[str, Any] = field(default_factory=dict)


def decide_put_track(cmd: PutTrack) -> NurtureTrack:
    """The track to store: the body checked as a track (errors name the field), its id the
    URL's (a body naming another id is refused); a version in the body is the store's."""
    if cmd.body.get("id", cmd.track_id) != cmd.track_id:
        raise CommandRefused(
            422, "Invalid track", errors=[{"field": "id", "message": "must match the URL"}]
        )
    doc = {k: v for k, v in cmd.body.items() if k != "version"} | {"id": cmd.track_id}
    try:
        return validate_track(doc)
    except ModelInvalid as exc:
        raise CommandRefused(422, "Invalid track", str(exc), exc.errors) from exc


def decide_retire_track(cmd: RetireTrack, *, active: bool) -> None:
    """Only an active track can be retired (``active``: whether it is one)."""
    if not active:
        raise CommandRefused(404, "Unknown track", f"no active nurture track {cmd.track_id!r}")


def decide_promotion(trained_metrics: Mapping[str, Any], incumbent: Incumbent | None) -> Promotion:
    """Promote the new model only if its AUC beats the incumbent's on the same holdout (or
    nothing is in service); the metrics kept with it say against what."""
    promoted = beats(float(trained_metrics["auc"]), incumbent.auc if incumbent else None)
    metrics = {
        **trained_metrics,
        "incumbent": None
        if incumbent is None
        else {"version": incumbent.version, "auc_on_this_holdout": incumbent.auc},
        "promoted": promoted,
    }
    return Promotion(promoted, metrics)

"""The built-in scoring model and nurture tracks: what a new install scores with before
marketing ops publish their own (model version 0) and the tracks its first migration seeds.

They are data, not code: ``model.json`` and ``tracks.json`` beside this module, shipped in
the wheel (hatch packages the whole ``src/leadflow`` tree) and parsed by the same pydantic
models and checks a published model or track goes through (``validate_model``,
``validate_track``). A broken file therefore fails loudly, naming the field: the service
loads both at start (``check_builtin``, an ``on_startup`` hook) and a unit test loads them.

Notes that JSON cannot carry: ``do_not_contact`` is a disqualify rule but
``marketing_opt_in`` is not: an e-mail opt-out (or a newsletter box left unticked) stops
nurture e-mail, not sales (docs/consent.md).
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import orjson

from leadflow.scoring.domain import NurtureTrack, ScoringModel, validate_model, validate_track


def _file(name: str) -> Traversable:
    return resources.files(__package__).joinpath(name)


@functools.cache
def _read(name: str) -> Any:
    return orjson.loads(_file(name).read_bytes())


def load_model(source: Traversable) -> ScoringModel:
    """A model file parsed and checked as a publish is (``ModelInvalid`` names the field)."""
    return validate_model(orjson.loads(source.read_bytes()))


def default_model_data() -> dict[str, Any]:
    """The built-in model as the JSON a publisher would send (a fresh copy to edit)."""
    return copy.deepcopy(_read("model.json"))


def default_tracks_data() -> list[dict[str, Any]]:
    """The built-in nurture tracks as JSON documents (a fresh copy to edit)."""
    return copy.deepcopy(_read("tracks.json"))


@functools.cache
def default_model() -> ScoringModel:
    """The built-in model, validated once per process (version 0). Activity types are
    checked against the catalogue, as on publish: the model as shipped must score only what
    intake can capture."""
    return load_model(_file("model.json"))


def default_tracks() -> list[NurtureTrack]:
    return [validate_track(t) for t in _read("tracks.json")]


def check_builtin() -> None:
    """Parse both files, raising ``ModelInvalid`` / a validation error if either is broken."""
    default_model()
    default_tracks()

"""Revenue attribution: how a won deal's revenue is spread over the lead's marketing touches
under each model. Pure; the fold (``domain.fold``) calls ``attribute_all`` on a win."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from leadflow.analytics.segments import UNKNOWN


@dataclass(frozen=True, slots=True)
class Touch:
    """A marketing touch (inquiry or campaign activity) that revenue may be attributed to."""

    at: datetime
    channel: str
    campaign: str
    kind: str  # "inquiry" | "activity"


ATTRIBUTION_MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "u_shaped",
    "w_shaped",
)


def attribution_weights(n: int, model: str, key_indexes: Sequence[int] = ()) -> list[float]:
    """Share of credit for each of ``n`` touches (oldest first); the shares sum to 1.

    U-shaped: 40 % first, 40 % last, 20 % spread over the middle (two touches: 50/50).
    W-shaped: 30 % each to first touch, the lead-creation (MQL) touch and the opportunity
    touch (``key_indexes`` = those two), 10 % spread over the others; with no others the
    10 % goes to the key touches equally. Key touches that coincide add up their shares.
    """
    if n <= 0:
        return []
    if model not in ATTRIBUTION_MODELS:
        raise ValueError(f"unknown attribution model {model!r}")
    w = [0.0] * n
    if model == "first_touch":
        w[0] = 1.0
    elif model == "last_touch":
        w[-1] = 1.0
    elif model == "linear":
        w = [1.0 / n] * n
    elif model == "u_shaped":
        if n == 1:
            w[0] = 1.0
        elif n == 2:
            w = [0.5, 0.5]
        else:
            w[0] = w[-1] = 0.4
            for i in range(1, n - 1):
                w[i] = 0.2 / (n - 2)
    else:  # w_shaped
        keys = [0, *(min(max(k, 0), n - 1) for k in key_indexes)]
        while len(keys) < 3:
            keys.append(n - 1)
        for k in keys:
            w[k] += 0.3
        others = [i for i in range(n) if i not in set(keys)]
        if others:
            for i in others:
                w[i] += 0.1 / len(others)
        else:
            for k in keys:
                w[k] += 0.1 / len(keys)
    return w


def _last_index_at_or_before(touches: Sequence[Touch], moment: datetime | None) -> int:
    if moment is None:
        return len(touches) - 1
    idx = 0
    for i, t in enumerate(touches):
        if t.at <= moment:
            idx = i
    return idx


def attribute_all(
    touches: Sequence[Touch], won_at: datetime, mql_at: datetime | None, opp_at: datetime | None
) -> dict[str, list[tuple[Touch, float]]]:
    """Credit per touch under every model, over the touches up to the win (time order)."""
    ordered = sorted((t for t in touches if t.at <= won_at), key=lambda t: t.at)
    if not ordered:
        ordered = [Touch(won_at, UNKNOWN, UNKNOWN, "none")]
    keys = (
        _last_index_at_or_before(ordered, mql_at),
        _last_index_at_or_before(ordered, opp_at),
    )
    out: dict[str, list[tuple[Touch, float]]] = {}
    for model in ATTRIBUTION_MODELS:
        weights = attribution_weights(len(ordered), model, keys)
        out[model] = [(t, w) for t, w in zip(ordered, weights, strict=True) if w > 0]
    return out

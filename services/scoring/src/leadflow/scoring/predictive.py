"""Predictive scoring: learn conversion from outcomes, explain it, and learn from rejections.

Pure functions, no I/O. The loop is:

* **features** — :func:`lead_features` turns what scoring knows about a lead (profile,
  import attributes, activities, the rule score) into a sparse ``{name: value}`` map. It is
  snapshotted while the lead is pre-sales and frozen when the lead qualifies (or sales takes
  it), so training never sees what happened later. Sales-entered import columns (``tags``,
  ``lead_quality``, ``lead_profile``, ``asymmetrique_*``) and identifiers are never features.
* **training** — :func:`train` fits a scikit-learn logistic regression on outcome examples
  (won = 1; lost, rejected, disqualified = 0) with a *time-based* holdout (the newest
  examples by snapshot time) when the times order them and that slice holds both classes,
  else a stratified one (see :func:`choose_holdout`), and reports AUC, a calibration table, top-decile lift and the
  rule model's AUC on the same holdout.
* **inference** — a trained model is kept as plain weights (:class:`LinearModel`) so scoring an
  event is a dot product, and the largest terms are the "top features" behind a prediction.
* **calibration from rejections** — :func:`rule_suggestions` finds rules that fire more often on
  leads sales rejects than on the rest, and backtests a lower weight on the stored snapshots.
"""

from __future__ import annotations

import functools
import io
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.scoring.domain import (
    ANSWER_FIELDS,
    Activity,
    LeadProfile,
    ScoreResult,
    ScoringModel,
    grade_of,
    level_of,
    mql_decision,
    profile_attributes,
)

# Import columns that sales fills in after talking to the lead (X Education: Tags, Lead
# Quality, Lead Profile, the Asymmetrique indices). Using them would leak the outcome.
SALES_ENTERED_ATTRIBUTES = frozenset({"tags", "lead_quality", "lead_profile"})
SALES_ENTERED_PREFIXES = ("asymmetrique",)
IDENTIFIER_ATTRIBUTES = frozenset({"lead_number", "prospect_id", "external_id", "id"})

CATEGORICAL_FIELDS = (
    "title", "seniority", "department", "industry", "country", "region", "city",
    "product_interest", "channel", "campaign", "utm_source", "utm_medium", "referrer",
    "capture_method", "rating",
)  # fmt: skip
NUMERIC_STEPS = tuple(2**i for i in range(12))  # 1 .. 2048: scale-free "at least" bins
POSITIVE = "won"
NEGATIVE = frozenset({"lost", "rejected", "disqualified"})
OUTCOMES = frozenset({POSITIVE, *NEGATIVE})
MIN_EXAMPLES = 20
MIN_PER_CLASS = 5


@functools.lru_cache(maxsize=4096)
def is_excluded_attribute(key: str) -> bool:
    """Sales-entered columns and identifiers are never features (no leakage, no memorising)."""
    k = key.strip().lower()
    return (
        k in SALES_ENTERED_ATTRIBUTES
        or k in IDENTIFIER_ATTRIBUTES
        or any(k.startswith(p) for p in SALES_ENTERED_PREFIXES)
    )


@functools.lru_cache(maxsize=65536)
def _slug(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip().lower())[:80]


def _number(value: str) -> float | None:
    try:
        number = float(value.replace(",", ""))
    except (ValueError, AttributeError):
        return None
    return number if math.isfinite(number) else None


def _numeric(feats: dict[str, float], name: str, value: float) -> None:
    magnitude = max(value, 0.0)
    feats[name] = math.log1p(magnitude)
    feats[f"{name}=0"] = 1.0 if magnitude == 0 else 0.0
    for step in NUMERIC_STEPS:
        if magnitude >= step:
            feats[f"{name}>={step}"] = 1.0


def lead_features(
    profile: LeadProfile,
    activities: Iterable[Activity],
    result: ScoreResult | None = None,
    model: ScoringModel | None = None,
) -> dict[str, float]:
    """The feature map of a lead as known now (only non-zero entries are kept)."""
    attrs = profile_attributes(profile, model)
    feats: dict[str, float] = {}
    for name in CATEGORICAL_FIELDS:
        value = attrs.get(name)
        feats[f"{name}={_slug(str(value)) if value else '?'}"] = 1.0
    for name in ANSWER_FIELDS:
        value = profile.answers.get(name)
        if name == "company_size":
            continue
        feats[f"answers.{name}={_slug(value) if value else '?'}"] = 1.0
    if profile.company_size is not None:
        _numeric(feats, "company_size", float(profile.company_size))
    for flag in ("free_mail", "disposable", "role_address", "has_account", "competitor"):
        if attrs.get(flag):
            feats[flag] = 1.0
    opt_in = profile.marketing_opt_in
    feats[f"marketing_opt_in={'?' if opt_in is None else 'yes' if opt_in else 'no'}"] = 1.0
    for key, raw in sorted(profile.attributes.items()):
        if is_excluded_attribute(key) or raw is None or not str(raw).strip():
            continue
        number = _number(str(raw))
        if number is not None:
            _numeric(feats, f"attr.{key}", number)
        else:
            feats[f"attr.{key}={_slug(str(raw))}"] = 1.0
    counts: Counter[str] = Counter()
    last: Activity | None = None
    for activity in activities:
        counts[activity.activity_type] += 1
        if last is None or activity.occurred_at >= last.occurred_at:
            last = activity
    for kind, n in counts.items():
        feats[f"activity.{kind}"] = math.log1p(n)
    feats[f"last_activity={last.activity_type if last else '?'}"] = 1.0
    if result is not None:
        feats["rule.fit"] = result.fit / 100.0
        feats["rule.engagement"] = min(result.engagement, 200.0) / 100.0
    return {k: v for k, v in feats.items() if v}


def snapshot_of(result: ScoreResult, features: Mapping[str, float]) -> dict[str, Any]:
    """What is frozen at qualification: features, the rule score and each rule's points."""
    return {
        "features": dict(features),
        "fit": result.fit,
        "engagement": result.engagement,
        "mql_ready": result.mql_ready,
        "matrix_cell": result.matrix_cell,
        "model_version": result.model_version,
        "rules": {c.rule_id: c.points for c in result.contributions},
    }


# Categorical features whose value is text a person typed (or a URL they came from); the
# rest are closed vocabularies (country, channel, rating...), counts and flags.
_FREE_TEXT_FEATURES = ("answers.", "attr.", "title=", "city=", "referrer=", "product_interest=")


def scrub_snapshot(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """A frozen snapshot without the person's own words, for an erased lead: features whose
    value is free text go, the rule score and every count stay (a training example still)."""
    if snapshot is None:
        return None
    features = snapshot.get("features") or {}
    kept = {
        k: v
        for k, v in features.items()
        if not (k.startswith(_FREE_TEXT_FEATURES) and "=" in k and not k.endswith("=?"))
    }
    return {**snapshot, "features": kept}


# ---------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    probability: float
    top_features: list[tuple[str, float]]


@dataclass(frozen=True)
class LinearModel:
    """A trained logistic regression as weights: ``p = sigmoid(intercept + sum(w * x))``."""

    version: int
    intercept: float
    weights: Mapping[str, float]

    def predict(self, features: Mapping[str, float], top: int = 5) -> Prediction:
        terms = [(name, self.weights[name] * value) for name, value in features.items()
                 if name in self.weights]  # fmt: skip
        z = self.intercept + sum(t for _, t in terms)
        terms.sort(key=lambda t: (-abs(t[1]), t[0]))
        return Prediction(_sigmoid(z), [(n, round(t, 4)) for n, t in terms[:top]])

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "intercept": self.intercept, "weights": dict(self.weights)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], version: int | None = None) -> LinearModel:
        return cls(
            version=int(version if version is not None else data["version"]),
            intercept=float(data["intercept"]),
            weights={str(k): float(v) for k, v in data["weights"].items()},
        )


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


# ---------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One labelled lead: features frozen at qualification, the outcome sales reached."""

    lead_id: str
    at: datetime
    features: Mapping[str, float]
    label: int
    rule_score: float


class NotEnoughData(ValueError):
    """Too few outcomes (or only one class) to train or to hold out honestly."""


def label_of(outcome: str) -> int:
    if outcome == POSITIVE:
        return 1
    if outcome in NEGATIVE:
        return 0
    raise ValueError(f"unknown outcome {outcome!r}")


def time_split(
    examples: Sequence[Example], holdout_fraction: float
) -> tuple[list[Example], list[Example]]:
    """Oldest examples train, newest are held out: the model is judged on the future."""
    ordered = sorted(examples, key=lambda e: (e.at, e.lead_id))
    n_hold = max(1, round(len(ordered) * holdout_fraction))
    return ordered[:-n_hold], ordered[-n_hold:]


def _check_classes(rows: Sequence[Example], where: str, minimum: int = MIN_PER_CLASS) -> None:
    positives = sum(e.label for e in rows)
    if positives < minimum or len(rows) - positives < minimum:
        raise NotEnoughData(
            f"the {where} split needs at least {minimum} won and {minimum} "
            f"not-won outcomes (has {positives} won of {len(rows)})"
        )


def _has_classes(rows: Sequence[Example], minimum: int) -> bool:
    positives = sum(e.label for e in rows)
    return positives >= minimum and len(rows) - positives >= minimum


def _stable_rank(lead_id: str) -> int:
    return zlib.crc32(lead_id.encode())


def stratified_split(
    examples: Sequence[Example], holdout_fraction: float
) -> tuple[list[Example], list[Example]]:
    """``holdout_fraction`` of each class (at least one), chosen by a stable hash of the lead
    id: the same outcomes always give the same split, and both classes are held out."""
    train_rows: list[Example] = []
    holdout: list[Example] = []
    for label in (0, 1):
        group = sorted((e for e in examples if e.label == label),
                       key=lambda e: (_stable_rank(e.lead_id), e.lead_id))  # fmt: skip
        n_hold = min(len(group) - 1, max(1, round(len(group) * holdout_fraction)))
        holdout += group[:n_hold]
        train_rows += group[n_hold:]
    key = lambda e: (e.at, e.lead_id)  # noqa: E731
    return sorted(train_rows, key=key), sorted(holdout, key=key)


def choose_holdout(
    examples: Sequence[Example], holdout_fraction: float
) -> tuple[list[Example], list[Example], dict[str, str]]:
    """The holdout to judge a model on, and why.

    Time-based (the newest outcomes) when the outcomes' times order them — every held-out
    snapshot strictly newer than every training one — and the newest slice holds at least
    ``MIN_PER_CLASS`` of each class: the model is then judged on the future, as it will be
    used. Otherwise (an imported history without dates has one time for all its rows; few
    outcomes can leave one class out of the newest slice) a stratified holdout: the same
    fraction of each class, picked by a stable hash of the lead id.
    """
    train_rows, holdout = time_split(examples, holdout_fraction)
    if not train_rows or holdout[0].at <= train_rows[-1].at:
        why = (
            "the outcomes' snapshot times do not order them (imported history without "
            "dates shares one time), so newest-first would be arbitrary"
        )
    elif not _has_classes(holdout, MIN_PER_CLASS) or not _has_classes(train_rows, MIN_PER_CLASS):
        why = (
            f"the newest {len(holdout)} outcomes hold fewer than {MIN_PER_CLASS} of a class, "
            "so a time-based holdout could not measure AUC"
        )
    else:
        return (
            train_rows,
            holdout,
            {
                "method": "time",
                "why": "the newest outcomes are held out: the model is judged on the future",
            },
        )
    train_rows, holdout = stratified_split(examples, holdout_fraction)
    return train_rows, holdout, {"method": "stratified", "why": why}


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (ties count half): the chance a won lead outranks a lost one."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(list(labels), list(scores)))


def calibration_table(
    labels: Sequence[int], probabilities: Sequence[float], bins: int = 10
) -> list[dict[str, Any]]:
    """Predicted vs observed conversion per probability band (empty bands left out)."""
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, p in enumerate(probabilities) if lo <= p < hi or (b == bins - 1 and p == 1)]
        if not idx:
            continue
        rows.append(
            {
                "band": f"{lo:.1f}-{hi:.1f}",
                "leads": len(idx),
                "mean_predicted": round(sum(probabilities[i] for i in idx) / len(idx), 4),
                "observed_rate": round(sum(labels[i] for i in idx) / len(idx), 4),
            }
        )
    return rows


def top_decile_lift(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Conversion in the top-scored 10% over the base rate (1.0 = no better than random)."""
    base = sum(labels) / len(labels)
    if base == 0:
        return 0.0
    n_top = max(1, math.ceil(len(labels) / 10))
    ranked = sorted(range(len(labels)), key=lambda i: -scores[i])[:n_top]
    return round(sum(labels[i] for i in ranked) / n_top / base, 4)


@dataclass
class TrainResult:
    model: LinearModel
    artifact: bytes
    metrics: dict[str, Any]
    holdout: list[Example] = field(default_factory=list)


def evaluate_on(model: LinearModel, rows: Sequence[Example]) -> dict[str, Any]:
    labels = [e.label for e in rows]
    probs = [model.predict(e.features, top=0).probability for e in rows]
    return {
        "auc": round(auc(labels, probs), 4),
        "top_decile_lift": top_decile_lift(labels, probs),
        "brier": round(
            sum((p - y) ** 2 for p, y in zip(probs, labels, strict=True)) / len(rows), 4
        ),
        "calibration": calibration_table(labels, probs),
    }


def train(
    examples: Sequence[Example],
    *,
    version: int,
    holdout_fraction: float = 0.2,
    regularisation: float = 0.1,
) -> TrainResult:
    """Fit a logistic regression on the older examples and measure it on the newest."""
    if len(examples) < MIN_EXAMPLES:
        raise NotEnoughData(f"{len(examples)} outcomes; at least {MIN_EXAMPLES} are needed")
    _check_classes(examples, "outcomes", MIN_PER_CLASS + 1)
    train_rows, holdout, how = choose_holdout(examples, holdout_fraction)
    _check_classes(train_rows, "training")
    _check_classes(holdout, "holdout", 1)
    import joblib
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline(
        [
            # Dense and liblinear: a few hundred features, and orders of magnitude faster
            # than lbfgs on sparse input on a busy machine.
            ("features", DictVectorizer(sparse=False)),
            ("model", LogisticRegression(C=regularisation, solver="liblinear", random_state=0)),
        ]
    )
    pipeline.fit([dict(e.features) for e in train_rows], [e.label for e in train_rows])
    vectorizer: Any = pipeline.named_steps["features"]
    classifier: Any = pipeline.named_steps["model"]
    weights = {
        name: round(float(w), 6)
        for name, w in zip(vectorizer.get_feature_names_out(), classifier.coef_[0], strict=True)
        if abs(w) > 1e-9
    }
    model = LinearModel(version, round(float(classifier.intercept_[0]), 6), weights)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    labels = [e.label for e in holdout]
    metrics = evaluate_on(model, holdout)
    metrics.update(
        {
            "algorithm": "logistic_regression",
            "regularisation_c": regularisation,
            "examples": len(examples),
            "train_examples": len(train_rows),
            "holdout_examples": len(holdout),
            "holdout_fraction": holdout_fraction,
            "holdout": how,
            "holdout_from": holdout[0].at.isoformat(),
            "holdout_to": holdout[-1].at.isoformat(),
            "train_to": train_rows[-1].at.isoformat(),
            "holdout_base_rate": round(sum(labels) / len(labels), 4),
            "rule_model": {
                "auc": round(auc(labels, [e.rule_score for e in holdout]), 4),
                "top_decile_lift": top_decile_lift(labels, [e.rule_score for e in holdout]),
            },
            "top_weights": [
                {"feature": n, "weight": w}
                for n, w in sorted(weights.items(), key=lambda kv: -abs(kv[1]))[:15]
            ],
        }
    )
    return TrainResult(model, buffer.getvalue(), metrics, holdout)


def beats(candidate_auc: float, current_auc: float | None) -> bool:
    """Promotion rule: strictly better AUC on the same holdout than the model in service."""
    return current_auc is None or candidate_auc > current_auc


# ---------------------------------------------------------------------------------------
# Calibration from rejections
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeRow:
    """An outcome with the frozen rule snapshot of that lead."""

    outcome: str
    reason_code: str | None
    rules: Mapping[str, float]
    fit: float
    engagement: float


def _requalify(row: OutcomeRow, model: ScoringModel, rule_id: str, ratio: float, kind: str) -> bool:
    """Would this snapshot still be MQL if ``rule_id`` earned ``ratio`` of its points?"""
    points = row.rules.get(rule_id, 0.0)
    delta = points * (1.0 - ratio)
    fit_raw = sum(p for r, p in row.rules.items() if r in _fit_ids(model))
    fit = min(100.0, max(0.0, fit_raw - (delta if kind == "fit" else 0.0)))
    engagement = max(0.0, row.engagement - (delta if kind == "engagement" else 0.0))
    cell = f"{grade_of(fit, model)[0]}{level_of(engagement, model)}"
    return mql_decision(fit, engagement, cell, model.mql)[0]


def _fit_ids(model: ScoringModel) -> frozenset[str]:
    return frozenset(r.id for r in model.fit_rules)


def _was_mql(row: OutcomeRow, model: ScoringModel, kind: str, rule_id: str) -> bool:
    return _requalify(row, model, rule_id, 1.0, kind)


def rule_suggestions(
    rows: Sequence[OutcomeRow],
    model: ScoringModel,
    *,
    min_support: int = 20,
    min_lift: float = 1.2,
) -> dict[str, Any]:
    """Which rules over-score leads sales rejects, and what a lower weight would do.

    For every positive rule: how many outcomes it fired on, the share rejected (by reason)
    against the share among all outcomes, and the won share. A rule whose rejection share is
    ``min_lift`` times the baseline (with ``min_support`` outcomes) gets a suggested weight
    scaled by its won share over the baseline won share, backtested on the snapshots: how many
    rejected leads it would have kept out of MQL, and how many won leads it would have lost.
    """
    total = len(rows)
    rejected_all = sum(r.outcome == "rejected" for r in rows)
    won_all = sum(r.outcome == POSITIVE for r in rows)
    base_reject = rejected_all / total if total else 0.0
    base_won = won_all / total if total else 0.0
    rules: list[tuple[str, str, float]] = [(r.id, "fit", r.points) for r in model.fit_rules]
    rules += [(r.id, "engagement", r.points) for r in model.engagement_rules]
    stats: list[dict[str, Any]] = []
    suggestions: list[dict[str, Any]] = []
    for rule_id, kind, points in rules:
        if points <= 0:
            continue
        fired = [r for r in rows if r.rules.get(rule_id, 0.0) > 0]
        if not fired:
            continue
        n = len(fired)
        rejected = [r for r in fired if r.outcome == "rejected"]
        won = sum(r.outcome == POSITIVE for r in fired)
        reject_rate = len(rejected) / n
        won_rate = won / n
        lift = reject_rate / base_reject if base_reject else 0.0
        reasons = Counter(r.reason_code or "unspecified" for r in rejected)
        stat = {
            "rule_id": rule_id,
            "kind": kind,
            "points": points,
            "outcomes": n,
            "rejected": len(rejected),
            "rejection_rate": round(reject_rate, 4),
            "rejection_lift": round(lift, 4),
            "won_rate": round(won_rate, 4),
            "reasons": dict(reasons.most_common()),
        }
        stats.append(stat)
        if n < min_support or lift < min_lift or won_rate > base_won:
            continue
        ratio = won_rate / base_won if base_won else 0.5
        ratio = min(0.9, max(0.0, ratio))
        new_points = round(points * ratio, 1)
        ratio = new_points / points
        was = [
            r for r in rows if r.rules.get(rule_id, 0.0) > 0 and _was_mql(r, model, kind, rule_id)
        ]
        after = [r for r in was if _requalify(r, model, rule_id, ratio, kind)]
        dropped = [r for r in was if r not in after]
        suggestions.append(
            {
                "rule_id": rule_id,
                "kind": kind,
                "change": {"points": {"from": points, "to": new_points}},
                "why": (
                    f"sales rejected {reject_rate:.0%} of the {n} leads this rule scored "
                    f"({lift:.2f}x the {base_reject:.0%} baseline; top reason "
                    f"{reasons.most_common(1)[0][0]!r}), and only {won_rate:.0%} were won "
                    f"against {base_won:.0%} overall"
                ),
                "outcome_backtest": {
                    "mql_with_rule": len(was),
                    "would_no_longer_qualify": len(dropped),
                    "rejected_kept_out": sum(r.outcome == "rejected" for r in dropped),
                    "won_lost": sum(r.outcome == POSITIVE for r in dropped),
                    "lost_or_disqualified_kept_out": sum(
                        r.outcome in {"lost", "disqualified"} for r in dropped
                    ),
                },
                "top_reason": reasons.most_common(1)[0][0],
            }
        )
    suggestions.sort(key=lambda s: -s["outcome_backtest"]["rejected_kept_out"])
    return {
        "outcomes": total,
        "rejected": rejected_all,
        "won": won_all,
        "baseline_rejection_rate": round(base_reject, 4),
        "baseline_won_rate": round(base_won, 4),
        "rules": sorted(stats, key=lambda s: -s["rejection_lift"]),
        "suggestions": suggestions,
    }


def apply_suggestion(model: ScoringModel, rule_id: str, points: float) -> dict[str, Any]:
    """The model as a draft document with one rule's points changed (for the backtest)."""
    doc = model.model_dump(mode="json")
    for key in ("fit_rules", "engagement_rules"):
        for rule in doc[key]:
            if rule["id"] == rule_id:
                rule["points"] = points
    return doc

"""Account scores (issue 30): a company's fit and engagement, rolled up over its people.

Pure, no I/O. B2B buying is done by groups, so an account is scored as one: its fit is the
best fit among its people (company attributes are shared; the persona that fits best is the
one that buys), and its engagement adds its people's engagement with diminishing returns
(the most engaged person counts fully, the next half, then a quarter, ...), so five people
reading one blog post never outweigh one person asking for a demo, and no single person
makes an account hot. The grade, level and matrix cell use the published scoring model's
bands; a *marketing-qualified account* (MQA) is an account the model's MQL rule accepts
(its cell or thresholds) and which has at least :data:`MQA_MIN_ENGAGED_PEOPLE` engaged people (a buying
group, not one lead — one lead is an MQL already).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from leadflow.scoring.domain import ScoringModel, grade_of, level_of, mql_decision

# Each next person (ordered by engagement) counts this share of the one before.
ROLLUP_RATIO = 0.5
MQA_MIN_ENGAGED_PEOPLE = 2


@dataclass(frozen=True)
class PersonScore:
    lead_id: str
    fit: float
    engagement: float
    disqualified: bool = False


@dataclass(frozen=True)
class AccountScore:
    fit: float
    engagement: float
    grade: str
    engagement_level: int
    matrix_cell: str
    people: int
    engaged_people: int
    qualified: bool
    reason: str


def rolled_engagement(engagements: Sequence[float]) -> float:
    """Σ e_i x ROLLUP_RATIO^i over engagements sorted high to low, capped at 100."""
    ordered = sorted((e for e in engagements if e > 0), reverse=True)
    total = sum(e * ROLLUP_RATIO**i for i, e in enumerate(ordered))
    return round(min(100.0, total), 2)


def account_score(people: Sequence[PersonScore], model: ScoringModel) -> AccountScore:
    """The account's score; disqualified people (students, competitors, do-not-contact)
    count towards neither fit nor engagement."""
    counted = [p for p in people if not p.disqualified]
    fit = max((p.fit for p in counted), default=0.0)
    engagement = rolled_engagement([p.engagement for p in counted])
    grade = grade_of(fit, model)
    level = level_of(engagement, model)
    cell = f"{grade[0]}{level}"
    engaged = sum(1 for p in counted if p.engagement > 0)
    ready, why = mql_decision(fit, engagement, cell, model.mql)
    if not ready:
        qualified, reason = False, why
    elif engaged < MQA_MIN_ENGAGED_PEOPLE:
        qualified = False
        reason = f"{engaged} engaged people, an MQA needs {MQA_MIN_ENGAGED_PEOPLE}"
    else:
        qualified, reason = True, f"{why}, {engaged} engaged people"
    return AccountScore(
        fit=fit,
        engagement=engagement,
        grade=grade,
        engagement_level=level,
        matrix_cell=cell,
        people=len(people),
        engaged_people=engaged,
        qualified=qualified,
        reason=reason,
    )

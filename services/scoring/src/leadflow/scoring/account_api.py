"""HTTP: an account's score, rolled up over its people (issue 30)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.events.errors import Problem
from leadflow.scoring import store
from leadflow.scoring.accounts import (
    MQA_MIN_ENGAGED_PEOPLE,
    ROLLUP_RATIO,
    PersonScore,
    account_score,
)
from leadflow.scoring.batch import score_lead

router = APIRouter()

AccountKey = Annotated[str, Path(min_length=1, max_length=255)]


@router.get(
    "/v1/accounts/{key}/score",
    tags=["accounts"],
    summary="An account's fit and engagement rolled up over its people, grade and MQA",
    dependencies=[requires(Permission.ACCOUNTS_READ)],
)
async def get_account_score(kit: KitDep, key: AccountKey) -> dict[str, Any]:
    """Scores every person of the account now (decay included, as ``GET
    /v1/leads/{id}/score`` does) and rolls them up with :func:`account_score`."""
    # The people, the model and their activities as of one moment (a READ ONLY snapshot).
    async with kit.snapshot() as tx:
        leads = await store.account_leads(tx, key)
        if not leads:
            raise Problem(
                404,
                "Unknown account",
                f"no scored lead belongs to account {key!r}",
                errors=[{"field": "key", "message": "no lead has this account id or domain"}],
            )
        model = await store.current_model(tx)
        now = kit.clock.now()
        people = []
        for lead in leads:
            result = await score_lead(tx, lead, model, now)
            people.append(
                PersonScore(
                    str(lead.lead_id),
                    result.fit,
                    result.engagement,
                    disqualified=lead.disqualified or result.disqualified_by is not None,
                )
            )
    score = account_score(people, model)
    first = leads[0].profile
    return {
        "key": key,
        "account_id": first.account_id,
        "domain": first.account_domain,
        "registered": any(lead.profile.account_registered for lead in leads),
        "scored_at": now.isoformat(),
        "model_version": model.version,
        "fit": score.fit,
        "engagement": score.engagement,
        "grade": score.grade,
        "engagement_level": score.engagement_level,
        "matrix_cell": score.matrix_cell,
        "qualified": score.qualified,
        "reason": score.reason,
        "engaged_people": score.engaged_people,
        "rollup": {"ratio": ROLLUP_RATIO, "mqa_min_engaged_people": MQA_MIN_ENGAGED_PEOPLE},
        "people": [
            {
                "lead_id": p.lead_id,
                "fit": p.fit,
                "engagement": p.engagement,
                "disqualified": p.disqualified,
            }
            for p in sorted(people, key=lambda p: (-p.engagement, p.lead_id))
        ],
    }

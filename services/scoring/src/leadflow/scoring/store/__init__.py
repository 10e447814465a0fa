"""SQL for scoring's read tables (unqualified names: the connection's search_path is our schema).

One module per table or concern: ``leads`` (one row per lead: profile, last published score,
qualification and nurture state), ``engagement`` (the ``activities`` table, the history a
score is computed from), ``outcomes`` (training examples and predictive models),
``documents`` (model versions and nurture tracks), ``batch`` (a consumer batch's reads and
writes, one statement each), ``jobs`` (re-score jobs) and ``accounts``. This package
re-exports their public names.
"""

from __future__ import annotations

from leadflow.scoring.store.accounts import (
    account_leads,
    account_members,
    customers_of_accounts,
    mark_account_qualified,
)
from leadflow.scoring.store.batch import (
    batch_versions,
    lock_batch_leads,
    save_batch,
)
from leadflow.scoring.store.documents import (
    current_model,
    deactivate_track,
    put_track,
    track,
    tracks,
)
from leadflow.scoring.store.engagement import (
    activities,
    activities_of,
    delete_activities,
    move_activities,
)
from leadflow.scoring.store.jobs import (
    create_job,
    get_job,
    lock_job,
    update_job,
)
from leadflow.scoring.store.leads import (
    LEAD_COLUMNS,
    SAVED_COLUMNS,
    LeadRow,
    count_open_leads,
    get_lead,
    lock_lead,
    lock_leads,
    open_lead_ids,
    open_leads_page,
    save_leads,
    upsert_lead,
)
from leadflow.scoring.store.outcomes import (
    all_outcomes,
    insert_predictive_model,
    latest_outcomes,
    next_predictive_version,
    predictive_models,
    predictive_weights,
    promoted_model,
    scrub_outcome_snapshots,
)

__all__ = [
    "LEAD_COLUMNS",
    "SAVED_COLUMNS",
    "LeadRow",
    "account_leads",
    "account_members",
    "activities",
    "activities_of",
    "all_outcomes",
    "batch_versions",
    "count_open_leads",
    "create_job",
    "current_model",
    "customers_of_accounts",
    "deactivate_track",
    "delete_activities",
    "get_job",
    "get_lead",
    "insert_predictive_model",
    "latest_outcomes",
    "lock_batch_leads",
    "lock_job",
    "lock_lead",
    "lock_leads",
    "mark_account_qualified",
    "move_activities",
    "next_predictive_version",
    "open_lead_ids",
    "open_leads_page",
    "predictive_models",
    "predictive_weights",
    "promoted_model",
    "put_track",
    "save_batch",
    "save_leads",
    "scrub_outcome_snapshots",
    "track",
    "tracks",
    "update_job",
    "upsert_lead",
]

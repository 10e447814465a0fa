"""SQL for intake's own tables (unqualified names: the engine's search_path is the schema).

Multi-row statements (``unnest`` of arrays) everywhere a request touches many rows, so a
batch of scans, activities or import rows costs a handful of round trips. One module per
table group (the modules say which); this package re-exports their public names, so
``store.X`` reads as before.
"""

from __future__ import annotations

from leadflow.intake.store.accounts import (
    list_accounts,
    upsert_account,
)
from leadflow.intake.store.activities import (
    anonymous_owners,
    claim_pending_activities,
    existing_activity_ids,
    insert_activities,
    link_anonymous,
)
from leadflow.intake.store.api_keys import (
    find_api_key,
    insert_api_key,
    list_api_keys,
    revoke_api_key,
)
from leadflow.intake.store.forms import (
    delete_form,
    get_form,
    list_forms,
    put_form,
)
from leadflow.intake.store.idempotency import (
    claim_idempotency,
    store_idempotent_response,
)
from leadflow.intake.store.imports import (
    ImportCounts,
    create_import,
    external_leads,
    finish_import,
    get_import,
    import_progress,
    import_total,
    record_external_ids,
)

# Read by a test of the candidate query's plan.
from leadflow.intake.store.inquiry_batch import _CANDIDATES_AND_ACCOUNTS as _CANDIDATES_AND_ACCOUNTS
from leadflow.intake.store.inquiry_batch import (
    SavedBatch,
    claim_and_lock,
    fetch_candidates_and_accounts,
    save_batch,
    stored_responses,
)
from leadflow.intake.store.leads import (
    LeadState,
    erase_lead_rows,
    find_lead_by_email,
    get_lead,
    lead_ids_by_emails,
    live_lead_ids,
    lock_identities,
    merged_into,
    set_consent,
    set_do_not_contact,
)
from leadflow.intake.store.scans import (
    record_scans,
    seen_scans,
)

__all__ = [
    "ImportCounts",
    "LeadState",
    "SavedBatch",
    "anonymous_owners",
    "claim_and_lock",
    "claim_idempotency",
    "claim_pending_activities",
    "create_import",
    "delete_form",
    "erase_lead_rows",
    "existing_activity_ids",
    "external_leads",
    "fetch_candidates_and_accounts",
    "find_api_key",
    "find_lead_by_email",
    "finish_import",
    "get_form",
    "get_import",
    "get_lead",
    "import_progress",
    "import_total",
    "insert_activities",
    "insert_api_key",
    "lead_ids_by_emails",
    "link_anonymous",
    "list_accounts",
    "list_api_keys",
    "list_forms",
    "live_lead_ids",
    "lock_identities",
    "merged_into",
    "put_form",
    "record_external_ids",
    "record_scans",
    "revoke_api_key",
    "save_batch",
    "seen_scans",
    "set_consent",
    "set_do_not_contact",
    "store_idempotent_response",
    "stored_responses",
    "upsert_account",
]

"""SQL for routing's own tables (unqualified names: the connection's search_path is our schema).

Configuration (reps, teams, queues, account owners, rule sets, reason codes) is stored as
validated documents; every admin write bumps ``config_revision`` so replicas can cache the
parsed roster and rule set per revision. Decision state (round-robin credits, open and
daily counts) and each lead's stage and owner live beside them.

The pieces: ``config``, ``decisions``, ``leads``, ``contacts``, ``sla_clocks``, ``tokens``,
``crm``.
"""

from leadflow.routing.store.config import (
    REASON_ACTIONS,
    RULES,
    Config,
    ConfigCache,
    account_owners,
    bump_revision,
    config_revision,
    current_rules,
    delete_doc,
    get_doc,
    list_docs,
    put_doc,
    reason_codes,
    roster,
    set_account_owner,
    set_reason_codes,
)
from leadflow.routing.store.contacts import (
    ContactWrites,
    write_contacts,
)
from leadflow.routing.store.crm import (
    add_external_ids,
    crm_receipt,
    external_ids,
    forget_external_ids_of,
    lead_by_email,
    lead_by_external_id,
    record_crm_receipt,
)
from leadflow.routing.store.decisions import (
    count_new,
    decision_lock,
    load_state,
    write_decisions,
)
from leadflow.routing.store.leads import (
    SALES_OPEN_STAGES,
    AssignmentRow,
    LeadRow,
    assignment_history,
    get_lead,
    insert_reassignment,
    lead_contact,
    lock_lead,
    lock_leads,
    open_leads_of,
    set_lifecycle,
    update_lead,
)
from leadflow.routing.store.sla_clocks import (
    SlaClockWrites,
    rep_queue,
    write_sla_clocks,
)
from leadflow.routing.store.tokens import (
    insert_rep_token,
    rep_of_token,
    rep_tokens,
    revoke_rep_token,
    revoke_rep_tokens,
)

__all__ = [
    "REASON_ACTIONS",
    "RULES",
    "SALES_OPEN_STAGES",
    "AssignmentRow",
    "Config",
    "ConfigCache",
    "ContactWrites",
    "LeadRow",
    "SlaClockWrites",
    "account_owners",
    "add_external_ids",
    "assignment_history",
    "bump_revision",
    "config_revision",
    "count_new",
    "crm_receipt",
    "current_rules",
    "decision_lock",
    "delete_doc",
    "external_ids",
    "forget_external_ids_of",
    "get_doc",
    "get_lead",
    "insert_reassignment",
    "insert_rep_token",
    "lead_by_email",
    "lead_by_external_id",
    "lead_contact",
    "list_docs",
    "load_state",
    "lock_lead",
    "lock_leads",
    "open_leads_of",
    "put_doc",
    "reason_codes",
    "record_crm_receipt",
    "rep_of_token",
    "rep_queue",
    "rep_tokens",
    "revoke_rep_token",
    "revoke_rep_tokens",
    "roster",
    "set_account_owner",
    "set_lifecycle",
    "set_reason_codes",
    "update_lead",
    "write_contacts",
    "write_decisions",
    "write_sla_clocks",
]

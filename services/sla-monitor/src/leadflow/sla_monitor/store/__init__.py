"""SQL for sla-monitor's own tables (unqualified names: the engine pins ``search_path``), one
module per table or concern, every public name re-exported here.

Tables: ``sla_policy_sets`` (every published policy set version: a kernel versioned
document, ``POLICIES``), ``sla_calendars``,
``sla_leads`` (segment + owner facts learnt from consumed events), ``sla_instances`` (one row
per SLA clock with its verdict), ``sla_escalations`` (ladder steps raised) and
``sla_config_revision`` (bumped by triggers whenever policy sets or calendars change).

The consumer path is set-based: a batch locks its leads and reads their running clocks with
one statement each and writes everything back with one (``write_batch``).
"""

from __future__ import annotations

from leadflow.sla_monitor.store.clocks import (
    active_slas,
    get_sla,
    mark_warned,
    record_escalations,
    save_leads,
)
from leadflow.sla_monitor.store.config import (
    ConfigCache,
    SlaConfig,
)
from leadflow.sla_monitor.store.leads import (
    load_leads,
)
from leadflow.sla_monitor.store.policies import (
    POLICIES,
    PolicySet,
    PolicySetDoc,
    current_policy_set,
    policy_errors,
    policy_set_of,
)
from leadflow.sla_monitor.store.reads import (
    OutcomeRow,
    lead_known,
    lead_slas,
    open_breaches,
    outcomes,
)
from leadflow.sla_monitor.store.sla_calendars import (
    calendars,
    delete_calendar,
    get_calendar,
    put_calendar,
    seed_calendar,
)

__all__ = [
    "POLICIES",
    "ConfigCache",
    "OutcomeRow",
    "PolicySet",
    "PolicySetDoc",
    "SlaConfig",
    "active_slas",
    "calendars",
    "current_policy_set",
    "delete_calendar",
    "get_calendar",
    "get_sla",
    "lead_known",
    "lead_slas",
    "load_leads",
    "mark_warned",
    "open_breaches",
    "outcomes",
    "policy_errors",
    "policy_set_of",
    "put_calendar",
    "record_escalations",
    "save_leads",
    "seed_calendar",
]

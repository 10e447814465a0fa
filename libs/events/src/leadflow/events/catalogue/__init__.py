"""The event catalogue: one module per producing service, payload models per event type.

Importing this package registers every event type with ``leadflow.events.registry``.
"""

from leadflow.events.catalogue import intake, notify, routing, scoring, sla
from leadflow.events.catalogue.common import LeadSnapshot, SourceInfo

__all__ = ["LeadSnapshot", "SourceInfo", "intake", "notify", "routing", "scoring", "sla"]

"""What notify's kit keeps besides itself (``ServiceKit[NotifyState]``): the caches its
handlers fill and its routes read, and the delivery that sends what they decide."""

from __future__ import annotations

from dataclasses import dataclass

from leadflow.notify.delivery import Delivery
from leadflow.notify.handlers import EndpointCache, PeopleCache


@dataclass(frozen=True)
class NotifyState:
    endpoints: EndpointCache
    people: PeopleCache
    delivery: Delivery

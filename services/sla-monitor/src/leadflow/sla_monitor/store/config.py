"""The parsed policy set and calendars, cached per ``sla_config_revision``."""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

from leadflow.events.calendar import BusinessCalendar
from leadflow.events.sql import Tx
from leadflow.sla_monitor.store.policies import PolicySet, current_policy_set
from leadflow.sla_monitor.store.sla_calendars import calendars

# -- configuration cache --------------------------------------------------------------


@dataclass(frozen=True)
class SlaConfig:
    """The parsed policy set and calendars as of one ``sla_config_revision``."""

    schema: str
    revision: int
    policy_set: PolicySet
    calendars: dict[str, BusinessCalendar]


_REVISION = "SELECT current_schema() AS schema, revision FROM sla_config_revision"


class ConfigCache:
    """Policy set + calendars parsed once per configuration revision, per schema.

    The admin API changes them at any time and on any replica; a statement trigger bumps
    ``sla_config_revision`` on every change (migration 0002), so one cheap read of that row
    per transaction decides whether the cached copy is still current. Inside one transaction
    (a consumer batch, a timer sweep) the configuration is read at most once.
    """

    def __init__(self) -> None:
        self._by_schema: dict[str, SlaConfig] = {}
        self._by_tx: WeakKeyDictionary[Tx, SlaConfig] = WeakKeyDictionary()

    async def get(self, tx: Tx, known: tuple[str, int] | None = None) -> SlaConfig:
        """``known`` is ``(schema, revision)`` when the caller read it already (piggybacked)."""
        if (memo := self._by_tx.get(tx)) is not None:
            return memo
        if known is None:
            row = await tx.fetchrow(_REVISION)
            if row is None:  # pragma: no cover - migration 0002 inserts the one revision row
                raise RuntimeError("the sla_config_revision row is gone")
            known = (row.schema, int(row.revision))
        schema, revision = known
        config = self._by_schema.get(schema)
        if config is None or config.revision != revision:
            config = SlaConfig(schema, revision, await current_policy_set(tx), await calendars(tx))
            self._by_schema[schema] = config
        self._by_tx[tx] = config
        return config

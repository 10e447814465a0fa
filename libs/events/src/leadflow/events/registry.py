"""The catalogue registry: ``EventPayload`` (the base of every payload model, which registers
each subclass as it is defined), payload classes keyed by (event type, schema version), and
upcasters. The envelope (``leadflow.events.envelope``) builds on this module, never the
other way round.

Schema evolution is additive within a version. A breaking change gets a new
``schema_version`` and an upcaster declared beside the new class::

    @registry.upcaster("lead.captured", from_version=1)
    def _captured_v1_to_v2(payload: dict) -> dict: ...

Old records are then upcast step by step when decoded, so handlers only see the newest shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from leadflow.events.errors import DecodeError, UnknownEventType


class EventPayload(BaseModel):
    """Base of every payload model in the catalogue.

    Subclasses declare ``event_type`` (e.g. ``"lead.captured"``), ``schema_version`` and
    ``producer``; defining the class registers it (see ``registry``). ``personal_fields``
    names the top-level fields holding personal data: intake encrypts them at rest and
    readers drop them once a lead is erased. Unknown fields are ignored so that additive
    schema changes never break an older consumer.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str]
    personal_fields: ClassVar[frozenset[str]] = frozenset()
    # What a stored event keeps in place of a sealed or erased personal field that the
    # schema requires (a required text field cannot be null); others become {} or null.
    erased_placeholders: ClassVar[Mapping[str, Any]] = {}
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            # The module global, looked up at each call: tests swap in a private registry.
            registry.register(cls)


def is_historical(payload: object) -> bool:
    """Whether an event is imported history (payload field ``historical``, docs/events.md):
    record it, but start nothing from it — no SLA clock, nurture, routing or notification."""
    return getattr(payload, "historical", False) is True


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Registry:
    def __init__(self) -> None:
        self._classes: dict[tuple[str, int], type[EventPayload]] = {}
        self._latest: dict[str, int] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: type[EventPayload]) -> None:
        key = (cls.event_type, cls.schema_version)
        existing = self._classes.get(key)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"{key} is registered twice: {existing} and {cls}")
        self._classes[key] = cls
        self._latest[cls.event_type] = max(self._latest.get(cls.event_type, 0), cls.schema_version)

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return decorate

    def latest(self, event_type: str) -> type[EventPayload]:
        version = self._latest.get(event_type)
        if version is None:
            raise UnknownEventType(event_type, 0)
        return self._classes[(event_type, version)]

    def current(self, event_type: str, version: int) -> type[EventPayload] | None:
        """The class of ``event_type`` if ``version`` is its newest (nothing to upcast)."""
        if self._latest.get(event_type) != version:
            return None
        return self._classes[(event_type, version)]

    def decode_payload(
        self, event_type: str, version: int, payload: dict[str, Any]
    ) -> tuple[type[EventPayload], dict[str, Any]]:
        """The newest class for ``event_type`` and ``payload`` upcast to it."""
        latest = self._latest.get(event_type)
        if latest is None or version > latest or version < 1:
            raise UnknownEventType(event_type, version)
        while version < latest:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise DecodeError(f"no upcaster for {event_type} v{version} -> v{version + 1}")
            payload = step(payload)
            version += 1
        return self._classes[(event_type, latest)], payload

    def all(self) -> list[type[EventPayload]]:
        """Every registered class, newest versions only, ordered by producer then type."""
        latest = [self._classes[(t, v)] for t, v in self._latest.items()]
        return sorted(latest, key=lambda c: (c.producer, c.event_type))

    def all_versions(self) -> list[type[EventPayload]]:
        """Every registered class, old versions included (schemas are kept for each)."""
        return sorted(
            self._classes.values(), key=lambda c: (c.producer, c.event_type, c.schema_version)
        )

    def by_producer(self, producer: str) -> list[type[EventPayload]]:
        return [c for c in self.all() if c.producer == producer]


registry = Registry()

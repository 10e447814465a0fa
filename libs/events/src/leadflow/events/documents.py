"""Versioned documents: configuration that people publish whole, as numbered versions.

The scoring model, routing's rule set, the SLA policy set and the lead process definition
are each one document that an admin replaces as a whole. They share one mechanism:

- a ``DocumentKind``: the document's name (its event stream is ``stream_id(name)``), the
  table its versions live in, its pydantic model, the built-in version 0 a new install
  starts with, a ``check`` against the service's other state (a rule naming an unknown
  queue) and the event each publish appends;
- one table shape (``table_ddl``: version, doc, published_by, published_at, note), created
  by the owning service's migration; versions are never updated or deleted;
- ``publish``: the next version, inserted and its event appended in the caller's unit of
  work (so the event leaves through the outbox with the version, or neither happens). Two
  publishers racing for the same number: the primary key lets one win; the other gets a 409
  naming the version it lost (``If-Match`` with a stale version: the same 409);
- reads (``current``, ``version``, ``versions``) and an in-process cache of parsed
  documents keyed by (version, the row's ``xmin``): a read costs one index probe of the
  newest row, a publish by another replica is seen by the very next read, and a row
  re-created after a truncate (tests) is never mistaken for the old one.

The HTTP routes for a kind come from ``leadflow.events.document_routes.document_router``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from leadflow.events.db import json_text
from leadflow.events.envelope import EventPayload, stream_id
from leadflow.events.errors import Problem
from leadflow.events.sql import Tx
from leadflow.events.uow import UnitOfWork

D = TypeVar("D", bound=BaseModel)
FieldErrors = list[dict[str, Any]]

# Fields of a document's JSON view that belong to the version, not to the document: a body
# sent to publish may carry them (a GET edited and sent back); they are not stored in doc.
VERSION_FIELDS = frozenset({"version", "source", "published_by", "published_at", "note"})
_CACHE_LIMIT = 64


def table_ddl(table: str) -> str:
    """The one table shape of a document's versions, for the owning service's migration."""
    return (
        f"CREATE TABLE {table} ("
        " version integer PRIMARY KEY CHECK (version > 0),"
        " doc jsonb NOT NULL,"
        " published_by text,"
        " published_at timestamptz NOT NULL DEFAULT now(),"
        " note text)"
    )


def field_errors(exc: ValidationError, prefix: str = "") -> FieldErrors:
    """pydantic's errors as problem+json ``errors``: ``rules[2].queue_id``-style fields."""
    out: FieldErrors = []
    for error in exc.errors():
        name = prefix
        for part in error["loc"]:
            name += f"[{part}]" if isinstance(part, int) else ("." if name else "") + str(part)
        out.append({"field": name or "body", "message": error["msg"]})
    return out


@dataclass(frozen=True)
class Document(Generic[D]):
    """One version of a document: number 0 is the built-in one (never stored)."""

    version: int
    doc: D
    published_by: str | None = None
    published_at: datetime | None = None
    note: str | None = None

    @property
    def source(self) -> str:
        return "built-in" if self.version == 0 else "published"

    def body(self) -> dict[str, Any]:
        """The JSON every route answers with: the document's fields and the version's."""
        return {
            **self.doc.model_dump(mode="json"),
            "version": self.version,
            "source": self.source,
            "published_by": self.published_by,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "note": self.note,
        }


EventOf = Callable[[Tx, Document[Any]], Awaitable[EventPayload]]
Check = Callable[[Tx, Any], Awaitable[FieldErrors]]


@dataclass(eq=False)
class DocumentKind(Generic[D]):
    """What is versioned, where it is stored and what publishing it announces.

    ``parse`` turns a publisher's JSON into the document (raising ``Problem`` naming the
    field); by default ``model.model_validate``. Stored versions are read back with
    ``model.model_validate`` alone (they passed ``parse`` when published, and a rule that
    tightened since must not stop a service from reading its own history). A model with a
    ``version`` field gets the version number in it. ``summary``: extra columns of the
    version list, as SQL expressions over ``doc`` (``{"rules": "jsonb_array_length(doc->'rules')"}``).
    """

    name: str
    table: str
    model: type[D]
    event: EventOf
    title: str = "document"
    builtin: Callable[[], D] | None = None
    parse: Callable[[Mapping[str, Any]], D] | None = None
    check: Check | None = None
    summary: Mapping[str, str] = field(default_factory=dict)
    _cache: dict[tuple[int, str], Document[D]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        columns = "version, doc, published_by, published_at, note, xmin::text AS stamp"
        extra = "".join(f", {sql} AS {name}" for name, sql in self.summary.items())
        t = self.table
        # The newest version's number and stamp: what a reader compares with its cache.
        self.head_sql = (
            f"SELECT version, xmin::text AS stamp FROM {t} ORDER BY version DESC LIMIT 1"
        )
        self._head = self.head_sql
        self._one = f"SELECT {columns} FROM {t} WHERE version = :v"
        self._list = (
            f"SELECT version, published_by, published_at, note{extra} FROM {t} "
            "ORDER BY version DESC"
        )
        # Next number and insert in one statement; a concurrent publisher that took the
        # number first makes it insert nothing (after waiting for that one to commit).
        self._insert = (
            f"INSERT INTO {t} (version, doc, published_by, published_at, note) "
            f"SELECT coalesce(max(version), 0) + 1, CAST(CAST(:doc AS text) AS jsonb), :by, "
            f":at, :note FROM {t} "
            "ON CONFLICT (version) DO NOTHING RETURNING version, xmin::text AS stamp"
        )
        self._max = f"SELECT coalesce(max(version), 0) AS version FROM {t}"

    @property
    def stream(self) -> Any:
        """The event stream its publish events are appended to."""
        return stream_id(self.name)

    # -- parsing ------------------------------------------------------------------------

    def draft(self, body: Mapping[str, Any]) -> D:
        """A publisher's JSON as a document (the version fields dropped); ``Problem`` 422
        naming every wrong field otherwise."""
        data = {k: v for k, v in body.items() if k not in VERSION_FIELDS}
        if self.parse is not None:
            return self.parse(data)
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            raise Problem.invalid_fields(field_errors(exc), f"Invalid {self.title}") from exc

    def _stored(self, doc: D) -> str:
        return json_text(doc.model_dump(mode="json", exclude=set(VERSION_FIELDS & _fields(doc))))

    def _load(self, row: Any) -> Document[D]:
        data = row["doc"]
        if isinstance(data, str | bytes):
            data = orjson.loads(data)
        if "version" in self.model.model_fields:
            data = {**data, "version": row["version"]}
        return Document(
            version=row["version"],
            doc=self.model.model_validate(data),
            published_by=row["published_by"],
            published_at=row["published_at"],
            note=row["note"],
        )

    def _builtin(self) -> Document[D] | None:
        """Version 0, made once per process (a consumer reads it per batch until a publish)."""
        if self.builtin is None:
            return None
        made = self._cache.get((0, ""))
        if made is None:
            made = self._cache[(0, "")] = Document(0, self.builtin())
        return made

    # -- reads --------------------------------------------------------------------------

    async def current(self, tx: Tx) -> Document[D]:
        """The newest version (the built-in one before any publish)."""
        row = await tx.fetchrow(self._head)
        if row is None:
            return await self.resolve(tx, None, None)
        return await self.resolve(tx, row["version"], row["stamp"])

    async def resolve(self, tx: Tx, version: int | None, stamp: str | None) -> Document[D]:
        """The version a ``head_sql`` row names (a caller may select it inside a statement
        of its own), from the cache or read and parsed once."""
        if version is None or stamp is None:
            builtin = self._builtin()
            if builtin is None:
                raise Problem(404, "Not Found", f"no {self.title} has been published")
            return builtin
        cached = self._cache.get((version, stamp))
        if cached is None:
            row = await tx.fetchrow(self._one, v=version)
            if row is None:  # gone since the head was read: only a truncate does that
                return await self.current(tx)
            cached = self._remember(self._load(row), row["stamp"])
        return cached

    def _remember(self, document: Document[D], stamp: str) -> Document[D]:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(document.version, stamp)] = document
        return document

    async def version(self, tx: Tx, number: int) -> Document[D] | None:
        """One version (0: the built-in one), or None."""
        if number == 0:
            return self._builtin()
        row = await tx.fetchrow(self._one, v=number)
        return self._load(row) if row is not None else None

    async def versions(self, tx: Tx) -> list[dict[str, Any]]:
        """Every published version, newest first: number, who, when, note and ``summary``."""
        rows = await tx.fetch(self._list)
        out = []
        for row in rows:
            item = dict(row.items())
            at = item["published_at"]
            item["published_at"] = at.isoformat() if at else None
            out.append(item)
        return out

    # -- publish ------------------------------------------------------------------------

    async def publish(
        self,
        uow: UnitOfWork,
        doc: D,
        *,
        published_by: str | None = None,
        note: str | None = None,
        expected: int | None = None,
    ) -> Document[D]:
        """Store ``doc`` as the next version and append the kind's event, in ``uow``.

        ``expected``: the version the publisher edited (``If-Match``); another one being
        current is a 409. ``check`` runs first (422 naming the fields)."""
        tx = uow.tx
        if self.check is not None:
            errors = await self.check(tx, doc)
            if errors:
                raise Problem.invalid_fields(errors, f"Invalid {self.title}")
        if expected is not None:
            current = await tx.fetchval(self._max)
            if current != expected:
                raise _conflict(self, expected, current)
        now = uow.clock.now()
        inserted = await tx.fetchrow(
            self._insert, doc=self._stored(doc), by=published_by, at=now, note=note
        )
        if inserted is None:
            raise _conflict(self, None, await tx.fetchval(self._max))
        number = inserted["version"]
        if "version" in self.model.model_fields:
            doc = doc.model_copy(update={"version": number})
        document = Document(number, doc, published_by, now, note)
        await uow.append(self.stream, await self.event(tx, document))
        return document


def _fields(doc: BaseModel) -> set[str]:
    return set(type(doc).model_fields)


def _conflict(kind: DocumentKind[Any], expected: int | None, current: int) -> Problem:
    """409 naming the version the publisher raced (and the one now current)."""
    if expected is None:
        detail = f"{kind.title} version {current} was published meanwhile; reload and retry"
    else:
        detail = f"{kind.title} is at version {current}, not {expected}; reload and retry"
    return Problem(
        409,
        "Version conflict",
        detail,
        extra={"current_version": current, "expected_version": expected},
    )

"""The configuration: reps, teams and queues as validated documents, account owners, the
rule set (a kernel versioned document), reason codes, and the per-revision cache of the
parsed roster and rules. Every admin write bumps ``config_revision``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.catalogue.routing import RoutingRulesPublished
from leadflow.events.documents import Document, DocumentKind
from leadflow.events.envelope import EventPayload
from leadflow.routing.domain import (
    Queue,
    Rep,
    Roster,
    RuleSet,
    Team,
    check_references,
)

REASON_ACTIONS = ("reject", "lost", "recycle")

M = TypeVar("M", bound=BaseModel)
_DOC_TABLES: dict[type[BaseModel], str] = {Rep: "reps", Team: "teams", Queue: "queues"}


async def bump_revision(conn: AsyncConnection) -> int:
    return int(
        await conn.scalar(
            text(
                "UPDATE config_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision"
            )
        )
    )


async def config_revision(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SELECT revision FROM config_revision WHERE id = 1")) or 0)


async def put_doc(conn: AsyncConnection, model: BaseModel) -> None:
    table = _DOC_TABLES[type(model)]
    await conn.execute(
        text(
            f"INSERT INTO {table} (id, doc) VALUES (:id, CAST(:doc AS jsonb)) "
            "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()"
        ),
        {"id": model.id, "doc": model.model_dump_json()},  # type: ignore[attr-defined]
    )
    await bump_revision(conn)


async def get_doc(conn: AsyncConnection, cls: type[M], id_: str) -> M | None:
    doc = await conn.scalar(text(f"SELECT doc FROM {_DOC_TABLES[cls]} WHERE id = :id"), {"id": id_})
    return None if doc is None else cls.model_validate(doc)


async def list_docs(conn: AsyncConnection, cls: type[M]) -> list[M]:
    rows = await conn.execute(text(f"SELECT doc FROM {_DOC_TABLES[cls]} ORDER BY id"))
    return [cls.model_validate(r[0]) for r in rows]


async def delete_doc(conn: AsyncConnection, cls: type[BaseModel], id_: str) -> bool:
    result = await conn.execute(text(f"DELETE FROM {_DOC_TABLES[cls]} WHERE id = :id"), {"id": id_})
    await bump_revision(conn)
    return bool(result.rowcount)


async def set_account_owner(conn: AsyncConnection, account_key: str, rep_id: str | None) -> None:
    if rep_id is None:
        await conn.execute(
            text("DELETE FROM account_owners WHERE account_key = :k"), {"k": account_key.lower()}
        )
    else:
        await conn.execute(
            text(
                "INSERT INTO account_owners (account_key, rep_id) VALUES (:k, :r) "
                "ON CONFLICT (account_key) DO UPDATE SET rep_id = EXCLUDED.rep_id, "
                "updated_at = now()"
            ),
            {"k": account_key.lower(), "r": rep_id},
        )
    await bump_revision(conn)


async def account_owners(conn: AsyncConnection) -> dict[str, str]:
    rows = await conn.execute(text("SELECT account_key, rep_id FROM account_owners"))
    return {r[0]: r[1] for r in rows}


async def roster(conn: AsyncConnection) -> Roster:
    return Roster.of(
        await list_docs(conn, Rep),
        await list_docs(conn, Team),
        await list_docs(conn, Queue),
        await account_owners(conn),
    )


async def _check_rules(conn: AsyncConnection, draft: RuleSet) -> list[dict[str, Any]]:
    """A rule set may only name the reps, teams and queues of the roster in force."""
    present = await roster(conn)
    errors: list[dict[str, Any]] = list(check_references(draft, present))
    if draft.default_queue_id not in present.queues:
        errors.append(
            {"field": "default_queue_id", "message": f"unknown queue {draft.default_queue_id!r}"}
        )
    return errors


async def _rules_published(conn: AsyncConnection, document: Document[RuleSet]) -> EventPayload:
    """``RoutingRulesPublished`` on ``stream_id("routing-rules")``: the version history is an
    event stream other services follow. Publishing also bumps ``config_revision`` (the
    route's ``after_publish``), so every replica's ``ConfigCache`` re-reads the rules."""
    return RoutingRulesPublished(
        rules_version=document.version,
        rules=[r.model_dump(mode="json") for r in document.doc.rules],
        published_by=document.published_by,
    )


RULES: DocumentKind[RuleSet] = DocumentKind(
    name="routing-rules",
    table="rule_sets",
    model=RuleSet,
    event=_rules_published,
    title="rule set",
    builtin=RuleSet,
    check=_check_rules,
    summary={"rules": "jsonb_array_length(doc->'rules')"},
)


async def current_rules(conn: AsyncConnection) -> RuleSet:
    return (await RULES.current(conn)).doc


async def reason_codes(conn: AsyncConnection) -> dict[str, list[str]]:
    rows = await conn.execute(text("SELECT action, code FROM reason_codes ORDER BY action, code"))
    out: dict[str, list[str]] = {a: [] for a in REASON_ACTIONS}
    for action, code in rows:
        out.setdefault(action, []).append(code)
    return out


async def set_reason_codes(conn: AsyncConnection, action: str, codes: Iterable[str]) -> None:
    await conn.execute(text("DELETE FROM reason_codes WHERE action = :a"), {"a": action})
    for code in codes:
        await conn.execute(
            text("INSERT INTO reason_codes (action, code) VALUES (:a, :c)"),
            {"a": action, "c": code},
        )
    await bump_revision(conn)


@dataclass(frozen=True)
class Config:
    """The configuration in force at one revision: who, where to, and which reason codes
    each action accepts (``reject``, ``lost``, ``recycle``)."""

    revision: int
    roster: Roster
    rules: RuleSet
    reason_codes: Mapping[str, Sequence[str]] = field(default_factory=dict)


class ConfigCache:
    """The parsed roster, rule set and reason codes, re-read only when ``config_revision`` moved."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._cached: Config | None = None
        self._tx: object | None = None

    async def get(self, conn: AsyncConnection, revision: int | None = None) -> Config:
        """The configuration at ``revision`` (read here when not given)."""
        # One revision read per transaction: a consumer batch decides on one configuration.
        tx = conn.get_transaction()
        if self.enabled and tx is not None and tx is self._tx and self._cached is not None:
            return self._cached
        self._tx = tx
        if revision is None:
            revision = await config_revision(conn)
        if self.enabled and self._cached is not None and self._cached.revision == revision:
            return self._cached
        config = Config(
            revision, await roster(conn), await current_rules(conn), await reason_codes(conn)
        )
        self._cached = config
        return config

"""The configuration: reps, teams and queues as validated documents, account owners, the
rule set (a kernel versioned document), reason codes, and the per-revision cache of the
parsed roster and rules. Every admin write bumps ``config_revision``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from leadflow.events.catalogue.routing import RoutingRulesPublished
from leadflow.events.documents import Document, DocumentKind
from leadflow.events.envelope import EventPayload
from leadflow.events.sql import Tx
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


async def bump_revision(tx: Tx) -> int:
    return int(
        await tx.fetchval(
            "UPDATE config_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision"
        )
    )


async def config_revision(tx: Tx) -> int:
    return int(await tx.fetchval("SELECT revision FROM config_revision WHERE id = 1") or 0)


async def put_doc(tx: Tx, model: BaseModel) -> None:
    table = _DOC_TABLES[type(model)]
    await tx.execute(
        f"INSERT INTO {table} (id, doc) VALUES (:id, CAST(:doc AS jsonb)) "
        "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()",
        id=model.id,  # type: ignore[attr-defined]
        doc=model.model_dump_json(),
    )
    await bump_revision(tx)


async def get_doc(tx: Tx, cls: type[M], id_: str) -> M | None:
    doc = await tx.fetchval(f"SELECT doc FROM {_DOC_TABLES[cls]} WHERE id = :id", id=id_)
    return None if doc is None else cls.model_validate(doc)


async def list_docs(tx: Tx, cls: type[M]) -> list[M]:
    rows = await tx.fetch(f"SELECT doc FROM {_DOC_TABLES[cls]} ORDER BY id")
    return [cls.model_validate(r[0]) for r in rows]


async def delete_doc(tx: Tx, cls: type[BaseModel], id_: str) -> bool:
    deleted = await tx.execute(f"DELETE FROM {_DOC_TABLES[cls]} WHERE id = :id", id=id_)
    await bump_revision(tx)
    return bool(deleted)


async def set_account_owner(tx: Tx, account_key: str, rep_id: str | None) -> None:
    if rep_id is None:
        await tx.execute("DELETE FROM account_owners WHERE account_key = :k", k=account_key.lower())
    else:
        await tx.execute(
            "INSERT INTO account_owners (account_key, rep_id) VALUES (:k, :r) "
            "ON CONFLICT (account_key) DO UPDATE SET rep_id = EXCLUDED.rep_id, "
            "updated_at = now()",
            k=account_key.lower(),
            r=rep_id,
        )
    await bump_revision(tx)


async def account_owners(tx: Tx) -> dict[str, str]:
    rows = await tx.fetch("SELECT account_key, rep_id FROM account_owners")
    return {r[0]: r[1] for r in rows}


async def roster(tx: Tx) -> Roster:
    return Roster.of(
        await list_docs(tx, Rep),
        await list_docs(tx, Team),
        await list_docs(tx, Queue),
        await account_owners(tx),
    )


async def _check_rules(tx: Tx, draft: RuleSet) -> list[dict[str, Any]]:
    """A rule set may only name the reps, teams and queues of the roster in force."""
    present = await roster(tx)
    errors: list[dict[str, Any]] = list(check_references(draft, present))
    if draft.default_queue_id not in present.queues:
        errors.append(
            {"field": "default_queue_id", "message": f"unknown queue {draft.default_queue_id!r}"}
        )
    return errors


async def _rules_published(tx: Tx, document: Document[RuleSet]) -> EventPayload:
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


async def current_rules(tx: Tx) -> RuleSet:
    return (await RULES.current(tx)).doc


async def reason_codes(tx: Tx) -> dict[str, list[str]]:
    rows = await tx.fetch("SELECT action, code FROM reason_codes ORDER BY action, code")
    out: dict[str, list[str]] = {a: [] for a in REASON_ACTIONS}
    for action, code in rows:
        out.setdefault(action, []).append(code)
    return out


async def set_reason_codes(tx: Tx, action: str, codes: Iterable[str]) -> None:
    """Replace the action's codes: one statement for the delete, one for the inserts."""
    await tx.execute("DELETE FROM reason_codes WHERE action = :a", a=action)
    await tx.execute(
        "INSERT INTO reason_codes (action, code) "
        "SELECT :a, code FROM unnest(CAST(:codes AS text[])) AS c(code)",
        a=action,
        codes=list(codes),
    )
    await bump_revision(tx)


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
        self._tx: Tx | None = None

    async def get(self, tx: Tx, revision: int | None = None) -> Config:
        """The configuration at ``revision`` (read here when not given)."""
        # One revision read per transaction: a consumer batch decides on one configuration.
        if self.enabled and tx is self._tx and self._cached is not None:
            return self._cached
        self._tx = tx
        if revision is None:
            revision = await config_revision(tx)
        if self.enabled and self._cached is not None and self._cached.revision == revision:
            return self._cached
        config = Config(revision, await roster(tx), await current_rules(tx), await reason_codes(tx))
        self._cached = config
        return config

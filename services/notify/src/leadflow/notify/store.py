"""notify's SQL: leads and people it knows, messages to people, webhook endpoints and
their queues. Everything here runs inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from leadflow.events.sql import Tx


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# -- leads ----------------------------------------------------------------------------------


async def upsert_contacts(
    tx: Tx,
    rows: Sequence[tuple[uuid.UUID, Mapping[str, Any], bool | None]],
) -> None:
    """``upsert_contact`` for a consumer batch in one statement: the rows of one lead are
    merged first, in order (later fields win, the last stated consent holds), because one
    INSERT may not update a row twice."""
    merged: dict[uuid.UUID, tuple[dict[str, Any], bool | None]] = {}
    for lead_id, contact, consent in rows:
        before, stated = merged.get(lead_id, ({}, None))
        merged[lead_id] = ({**before, **contact}, stated if consent is None else consent)
    await tx.execute(
        """
            INSERT INTO notify_leads (lead_id, contact, consent)
            SELECT id, CAST(c AS jsonb), ok
            FROM unnest(CAST(:ids AS uuid[]), CAST(:contacts AS text[]), CAST(:consents AS boolean[]))
                AS t(id, c, ok)
            ON CONFLICT (lead_id) DO UPDATE SET
                contact = CASE WHEN notify_leads.erased THEN NULL
                          ELSE coalesce(notify_leads.contact, '{}'::jsonb) || EXCLUDED.contact END,
                consent = coalesce(EXCLUDED.consent, notify_leads.consent),
                updated_at = now()
            """,
        ids=list(merged),
        contacts=[_json(contact) for contact, _ in merged.values()],
        consents=[consent for _, consent in merged.values()],
    )


async def set_scorings(tx: Tx, scorings: Mapping[uuid.UUID, Mapping[str, Any]]) -> None:
    """Each lead's latest score summary, for a consumer batch in one statement."""
    await tx.execute(
        """
            INSERT INTO notify_leads (lead_id, scoring)
            SELECT id, CAST(s AS jsonb)
            FROM unnest(CAST(:ids AS uuid[]), CAST(:scorings AS text[])) AS t(id, s)
            ON CONFLICT (lead_id) DO UPDATE SET scoring = EXCLUDED.scoring, updated_at = now()
            """,
        ids=list(scorings),
        scorings=[_json(dict(v)) for v in scorings.values()],
    )


async def set_consent(tx: Tx, lead_id: uuid.UUID, opt_in: bool) -> None:
    await tx.execute(
        """
            INSERT INTO notify_leads (lead_id, consent, opted_out) VALUES (:id, :c, NOT :c)
            ON CONFLICT (lead_id) DO UPDATE SET consent = :c,
                opted_out = notify_leads.opted_out OR NOT :c, updated_at = now()
            """,
        id=lead_id,
        c=opt_in,
    )


async def set_do_not_contact(tx: Tx, lead_id: uuid.UUID, flag: bool) -> None:
    await tx.execute(
        """
            INSERT INTO notify_leads (lead_id, do_not_contact) VALUES (:id, :f)
            ON CONFLICT (lead_id) DO UPDATE SET do_not_contact = :f, updated_at = now()
            """,
        id=lead_id,
        f=flag,
    )


async def erase(tx: Tx, lead_id: uuid.UUID) -> None:
    await tx.execute(
        """
            INSERT INTO notify_leads (lead_id, erased) VALUES (:id, true)
            ON CONFLICT (lead_id) DO UPDATE SET contact = NULL, erased = true, updated_at = now()
            """,
        id=lead_id,
    )
    # Nothing waiting about this lead may still go out with its name in it, and the log of
    # what went out keeps who was told and when, not the subject that named the person.
    await tx.execute(
        """
            UPDATE notify_messages SET subject = NULL,
                status = CASE WHEN status IN ('pending', 'digest') THEN 'withheld' ELSE status END,
                last_error = CASE WHEN status IN ('pending', 'digest') THEN 'lead erased'
                             ELSE last_error END
            WHERE lead_id = :id
            """,
        id=lead_id,
    )


async def get_lead(tx: Tx, lead_id: uuid.UUID) -> Any:
    return await tx.fetchrow("SELECT * FROM notify_leads WHERE lead_id = :id", id=lead_id)


async def get_leads(tx: Tx, lead_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await tx.fetch(
        "SELECT * FROM notify_leads WHERE lead_id = ANY(CAST(:ids AS uuid[]))", ids=list(lead_ids)
    )
    return {r.lead_id: r for r in rows}


async def note_nurture_sent(tx: Tx, lead_id: uuid.UUID, at: datetime) -> None:
    await tx.execute(
        "UPDATE notify_leads SET last_nurture_at = :at WHERE lead_id = :id", id=lead_id, at=at
    )


# -- people ---------------------------------------------------------------------------------


async def upsert_rep(
    tx: Tx,
    rep_id: str,
    name: str | None,
    email: str | None,
    team_id: str | None,
    manager_email: str | None,
) -> None:
    """The roster as routing last described it on an assignment."""
    await tx.execute(
        """
            INSERT INTO notify_reps (rep_id, name, email, team_id) VALUES (:r, :n, :e, :t)
            ON CONFLICT (rep_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
                team_id = EXCLUDED.team_id, updated_at = now()
            """,
        r=rep_id,
        n=name,
        e=email,
        t=team_id,
    )
    if team_id is not None:
        await tx.execute(
            """
                INSERT INTO notify_teams (team_id, manager_email) VALUES (:t, :m)
                ON CONFLICT (team_id) DO UPDATE SET manager_email = EXCLUDED.manager_email,
                    updated_at = now()
                """,
            t=team_id,
            m=manager_email,
        )


async def rep(tx: Tx, rep_id: str | None) -> Any:
    if rep_id is None:
        return None
    return await tx.fetchrow("SELECT * FROM notify_reps WHERE rep_id = :r", r=rep_id)


async def team(tx: Tx, team_id: str | None) -> Any:
    if team_id is None:
        return None
    return await tx.fetchrow("SELECT * FROM notify_teams WHERE team_id = :t", t=team_id)


async def set_team_channel(tx: Tx, team_id: str, url: str | None) -> None:
    await tx.execute(
        """
            INSERT INTO notify_teams (team_id, slack_webhook_url) VALUES (:t, :u)
            ON CONFLICT (team_id) DO UPDATE SET slack_webhook_url = EXCLUDED.slack_webhook_url,
                updated_at = now()
            """,
        t=team_id,
        u=url,
    )


async def preferences(tx: Tx, addresses: Sequence[str]) -> dict[str, str]:
    rows = await tx.fetch(
        "SELECT address, preference FROM notify_preferences "
        "WHERE address = ANY(CAST(:a AS text[]))",
        a=[a.lower() for a in addresses],
    )
    return {r.address: r.preference for r in rows}


async def people(tx: Tx) -> tuple[dict[str, str], dict[str, str]]:
    """Every preference (address -> preference) and team channel (team -> URL)."""
    prefs = await tx.fetch("SELECT address, preference FROM notify_preferences")
    channels = await tx.fetch(
        "SELECT team_id, slack_webhook_url FROM notify_teams WHERE slack_webhook_url <> ''"
    )
    return {r.address: r.preference for r in prefs}, {
        r.team_id: r.slack_webhook_url for r in channels
    }


async def set_preference(tx: Tx, address: str, preference: str) -> None:
    await tx.execute(
        """
            INSERT INTO notify_preferences (address, preference) VALUES (:a, :p)
            ON CONFLICT (address) DO UPDATE SET preference = EXCLUDED.preference, updated_at = now()
            """,
        a=address.lower(),
        p=preference,
    )


# -- messages to people ---------------------------------------------------------------------


async def add_message(
    tx: Tx,
    *,
    message_id: str,
    kind: str,
    channel: str,
    recipient: str,
    lead_id: uuid.UUID | None,
    status: str,
    subject: str | None,
    context: Mapping[str, Any],
    caused_by: str,
    caused_event_id: uuid.UUID | None,
    caused_recorded_at: datetime | None,
) -> bool:
    affected = await tx.execute(
        """
            INSERT INTO notify_messages (message_id, kind, channel, recipient, lead_id, status,
                subject, context, caused_by, caused_event_id, caused_recorded_at)
            VALUES (:id, :kind, :channel, :to, :lead, :status, :subject, CAST(:ctx AS jsonb),
                    :by, :eid, :rat)
            ON CONFLICT (message_id) DO NOTHING
            """,
        id=message_id,
        kind=kind,
        channel=channel,
        to=recipient,
        lead=lead_id,
        status=status,
        subject=subject,
        ctx=_json(dict(context)),
        by=caused_by,
        eid=caused_event_id,
        rat=caused_recorded_at,
    )
    return bool(affected)


async def messages_by_id(tx: Tx, ids: Sequence[str]) -> list[Any]:
    rows = await tx.fetch(
        "SELECT * FROM notify_messages WHERE message_id = ANY(CAST(:ids AS text[])) "
        "ORDER BY created_at",
        ids=list(ids),
    )
    return list(rows)


async def messages_sent(tx: Tx, done: Sequence[tuple[str, str | None]], at: datetime) -> None:
    """Many messages sent, with their subjects: one statement."""
    if not done:
        return
    await tx.execute(
        """
            UPDATE notify_messages m SET status = 'sent', subject = coalesce(d.subject, m.subject),
                attempts = m.attempts + 1, last_error = NULL, sent_at = :at
            FROM unnest(CAST(:ids AS text[]), CAST(:subjects AS text[])) AS d(id, subject)
            WHERE m.message_id = d.id
            """,
        ids=[i for i, _ in done],
        subjects=[s for _, s in done],
        at=at,
    )


async def message_done(
    tx: Tx,
    message_id: str,
    *,
    status: str,
    subject: str | None,
    at: datetime,
    error: str | None = None,
) -> None:
    await tx.execute(
        """
            UPDATE notify_messages SET status = :s, subject = coalesce(:subj, subject),
                attempts = attempts + 1, last_error = :err,
                sent_at = CASE WHEN :s = 'sent' THEN CAST(:at AS timestamptz) ELSE sent_at END
            WHERE message_id = :id
            """,
        id=message_id,
        s=status,
        subj=subject,
        at=at,
        err=error,
    )


async def take_digest(tx: Tx, recipient: str) -> list[Any]:
    rows = await tx.fetch(
        """
            UPDATE notify_messages SET status = 'digested'
            WHERE recipient = :r AND status = 'digest' RETURNING message_id, subject, kind, lead_id
            """,
        r=recipient,
    )
    return sorted(rows, key=lambda r: r.message_id)


async def undo_digest(tx: Tx, ids: Sequence[str]) -> None:
    await tx.execute(
        "UPDATE notify_messages SET status = 'digest' WHERE message_id = ANY(CAST(:ids AS text[]))",
        ids=list(ids),
    )


async def list_messages(
    tx: Tx, *, lead_id: uuid.UUID | None, recipient: str | None, limit: int
) -> list[Any]:
    rows = await tx.fetch(
        """
            SELECT message_id, kind, channel, recipient, lead_id, status, subject, attempts,
                   last_error, caused_by, created_at, sent_at FROM notify_messages
            WHERE (CAST(:lead AS uuid) IS NULL OR lead_id = :lead)
              AND (CAST(:to AS text) IS NULL OR recipient = :to)
            ORDER BY created_at DESC, message_id LIMIT :limit
            """,
        lead=lead_id,
        to=recipient.lower() if recipient else None,
        limit=limit,
    )
    return list(rows)

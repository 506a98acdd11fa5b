"""From the outbox to delivery rows (the relay), and the safety nets: sweep and prune.

See ``nhi.services.deliveries`` for the guarantees; the relay's part is that an event is marked
relayed in the same transaction that creates its delivery rows, so a crash leaves either the event
unrelayed (relayed again later) or the rows committed (dispatched again by the sweep).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from nhi import clock
from nhi.extensions import db
from nhi.models.base import upsert_insert
from nhi.models.outbox import OutboxEvent
from nhi.models.webhooks import WebhookDelivery, WebhookSubscription
from nhi.services.deliveries import dispatch

RELAY_BATCH = 500
SWEEP_BATCH = 1000
SWEEP_GRACE = timedelta(minutes=2)


def relay_outbox() -> int:
    """Turn unrelayed outbox events into delivery rows (one per matching active subscription),
    mark them relayed, commit, then dispatch the new deliveries. Returns events relayed."""
    relayed = 0
    while True:
        events = (
            db.session.execute(
                db.select(OutboxEvent)
                .where(OutboxEvent.relayed_at.is_(None))
                .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
                .limit(RELAY_BATCH)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        if not events:
            db.session.commit()
            return relayed
        tenants = {e.tenant_id for e in events}
        subs = (
            db.session.execute(
                db.select(WebhookSubscription).where(
                    WebhookSubscription.tenant_id.in_(tenants),
                    WebhookSubscription.active.is_(True),
                )
            )
            .scalars()
            .all()
        )
        now = clock.now()
        rows = [
            {
                "id": uuid.uuid4(),
                "tenant_id": event.tenant_id,
                "subscription_id": sub.id,
                "event_id": event.id,
                "event_type": event.event_type,
                "payload": _body(event),
                "status": "pending",
                "attempts": 0,
                "round_attempts": 0,
                "next_attempt_at": now,
                "attempt_log": [],
                "created_at": now,
            }
            for event in events
            for sub in subs
            if sub.tenant_id == event.tenant_id
            and sub.wants(event.event_type)
            and sub.created_at <= event.occurred_at
        ]
        new_ids: list[uuid.UUID] = []
        if rows:
            stmt = (
                upsert_insert(WebhookDelivery)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["event_id", "subscription_id"])
                .returning(WebhookDelivery.id)
            )
            new_ids = list(db.session.execute(stmt).scalars())
        db.session.execute(
            sa.update(OutboxEvent)
            .where(OutboxEvent.id.in_([e.id for e in events]))
            .values(relayed_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        relayed += len(events)
        dispatch(new_ids)


def _body(event: OutboxEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.event_type,
        "timestamp": clock.isoformat(event.occurred_at),
        "tenant_id": str(event.tenant_id),
        "data": event.data,
    }


def sweep(*, grace: timedelta = SWEEP_GRACE) -> int:
    """Re-dispatch deliveries that are overdue by more than ``grace`` (a lost job or an outage)
    and those whose attempt lease lapsed (a killed worker). Returns how many were dispatched."""
    now = clock.now()
    ids = list(
        db.session.execute(
            db.select(WebhookDelivery.id)
            .where(
                sa.or_(
                    sa.and_(
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= now - grace,
                    ),
                    sa.and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until < now),
                )
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(SWEEP_BATCH)
        ).scalars()
    )
    db.session.commit()
    dispatch(ids)
    return len(ids)


def prune(*, outbox_age: timedelta = timedelta(days=7)) -> int:
    """Delete relayed outbox rows older than ``outbox_age``; returns how many."""
    cutoff = clock.now() - outbox_age
    result = db.session.execute(
        sa.delete(OutboxEvent).where(
            OutboxEvent.relayed_at.is_not(None), OutboxEvent.relayed_at < cutoff
        )
    )
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

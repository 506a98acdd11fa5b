"""Domain events: written to the outbox in the same transaction as the change that causes them."""

from __future__ import annotations

import uuid
from typing import Any

from nhi import clock
from nhi.extensions import db
from nhi.models.outbox import OutboxEvent
from nhi.serialization import jsonable

EVENT_TYPES = (
    "agent.anomaly.detected",
    "approval.requested",
    "approval.approved",
    "approval.denied",
    "approval.expired",
    "nhi.created",
    "nhi.suspended",
    "nhi.reactivated",
    "nhi.decommissioned",
    "nhi.deleted",
    "nhi.ownership_transferred",
    "credential.rotated",
    "credential.expiring",
    "certification.launched",
    "certification.completed",
    "certification.due_soon",
    "certification.overdue",
    "risk.level_changed",
)


def emit(tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]) -> OutboxEvent:
    """Queue a domain event; it becomes durable only if the surrounding transaction commits."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event = OutboxEvent(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        event_type=event_type,
        occurred_at=clock.now(),
        data=jsonable(data),
    )
    db.session.add(event)
    return event

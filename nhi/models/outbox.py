"""Domain events waiting to leave the process, written in the transaction that caused them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi import clock
from nhi.extensions import db
from nhi.models.base import IdMixin, JSONType, TenantMixin, UTCDateTime


class OutboxEvent(IdMixin, TenantMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "outbox_events"

    event_type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=clock.now)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    # Set once the relay has handed the event to the job queue (or run it inline).
    relayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_outbox_unrelayed", "relayed_at", "occurred_at"),)

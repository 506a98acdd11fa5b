"""Webhook subscriptions and the delivery of each event to each subscription."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi import clock
from nhi.extensions import db
from nhi.models.base import IdMixin, JSONType, TenantMixin, TimestampMixin, UTCDateTime

DELIVERY_STATUSES = ("pending", "sending", "succeeded", "failed")


class WebhookSubscription(IdMixin, TenantMixin, TimestampMixin, db.Model):  # type: ignore[name-defined]
    """An endpoint that receives the tenant's events. Secrets are stored encrypted (Fernet, key
    derived from the JWT secret); during a rotation the previous secret signs too until
    ``previous_secret_expires_at``."""

    __tablename__ = "webhook_subscriptions"

    url: Mapped[str] = mapped_column(sa.String(2000), nullable=False)
    events: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    description: Mapped[str | None] = mapped_column(sa.String(500))
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    secret_encrypted: Mapped[str] = mapped_column(sa.Text, nullable=False)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_webhook_subs_tenant_active", "tenant_id", "active"),)

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


class WebhookDelivery(IdMixin, TenantMixin, db.Model):  # type: ignore[name-defined]
    """One message (one event) for one subscription, with its attempts.

    ``event_id`` is the message id sent as ``webhook-id`` on every attempt; the unique constraint
    on (event_id, subscription_id) is what keeps a relayed event from becoming two messages.
    The body is stored so that retries send exactly the same bytes' content.
    """

    __tablename__ = "webhook_deliveries"

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid,
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    )
    event_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False)
    event_type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="pending")
    # All attempts ever made, and those of the current automatic round (reset by manual retry).
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    round_attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    last_status_code: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # While "sending": the claim is the worker's until then (a killed worker's claim lapses).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, nullable=False, default=list
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=clock.now)

    __table_args__ = (
        sa.UniqueConstraint("event_id", "subscription_id", name="uq_webhook_delivery_event_sub"),
        sa.Index("ix_webhook_deliveries_sub_created", "subscription_id", "created_at"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'succeeded', 'failed')",
            name="ck_webhook_deliveries_status",
        ),
    )

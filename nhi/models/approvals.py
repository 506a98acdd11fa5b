"""Human-in-the-loop approval requests created by authorize calls."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi.extensions import db
from nhi.models.base import IdMixin, JSONType, TenantMixin, UTCDateTime

APPROVAL_STATUSES = ("pending", "approved", "denied", "expired")


class Approval(IdMixin, TenantMixin, db.Model):  # type: ignore[name-defined]
    """One request for a human decision on one agent action.

    ``params_hash`` (SHA-256 of the canonical JSON of ``parameters``) is what a later authorize
    call matches on, together with agent, resource and action. ``expires_at`` is the end of the
    pending period while pending, and the end of the usable period once approved; an approved
    approval is single use (``used_at``). At most one pending approval exists per request key.
    """

    __tablename__ = "approvals"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("identities.id", ondelete="CASCADE"), nullable=False
    )
    tool: Mapped[str | None] = mapped_column(sa.String(200))
    resource: Mapped[str] = mapped_column(sa.String(300), nullable=False)
    action: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    parameters: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    params_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="pending")
    requested_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    decided_by: Mapped[str | None] = mapped_column(sa.String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(sa.String(2000))
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The authorize decision that created the request, and the one that used it up.
    decision_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    used_decision_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    permission_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (
        sa.Index("ix_approvals_tenant_status", "tenant_id", "status", "requested_at"),
        sa.Index(
            "ix_approvals_request_key", "tenant_id", "agent_id", "resource", "action", "params_hash"
        ),
        sa.Index(
            "uq_approvals_one_pending",
            "tenant_id",
            "agent_id",
            "resource",
            "action",
            "params_hash",
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'denied', 'expired')", name="ck_approvals_status"
        ),
    )

    def effective_status(self, now: datetime) -> str:
        """``expired`` from the moment a pending request's time is up, or an approval's usable
        period ends unused (no job needed: the sweep only persists what reads already say)."""
        if (
            self.status in ("pending", "approved")
            and self.used_at is None
            and (self.expires_at <= now)
        ):
            return "expired"
        return self.status


def effective_status_expr(now: datetime) -> sa.ColumnElement[str]:
    """SQL twin of ``Approval.effective_status``."""
    return sa.case(
        (
            sa.and_(
                Approval.status.in_(("pending", "approved")),
                Approval.used_at.is_(None),
                Approval.expires_at <= now,
            ),
            sa.literal("expired"),
        ),
        else_=Approval.status,
    )

"""How an authorized action went, as reported by the agent (feeds error-rate baselines)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi.extensions import db
from nhi.models.base import TenantMixin, UTCDateTime


class DecisionOutcome(TenantMixin, db.Model):  # type: ignore[name-defined]
    """At most one outcome per decision (the primary key makes a second report a conflict)."""

    __tablename__ = "decision_outcomes"

    decision_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    agent_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    detail: Mapped[str | None] = mapped_column(sa.String(2000))
    reported_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (
        sa.Index("ix_decision_outcomes_agent_time", "tenant_id", "agent_id", "reported_at"),
        sa.CheckConstraint("status IN ('success', 'error')", name="ck_decision_outcomes_status"),
    )

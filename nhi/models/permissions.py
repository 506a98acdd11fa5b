"""Fine-grained permissions of AI agents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi import clock
from nhi.extensions import db
from nhi.models.base import IdMixin, JSONType, TenantMixin, UTCDateTime

EFFECTS = ("allow", "deny")


class AgentPermission(IdMixin, TenantMixin, db.Model):  # type: ignore[name-defined]
    """``effect`` on ``action`` over ``resource`` (a ``kind:name`` pattern with ``*``)."""

    __tablename__ = "agent_permissions"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("identities.id", ondelete="CASCADE"), nullable=False
    )
    resource: Mapped[str] = mapped_column(sa.String(300), nullable=False)
    action: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    effect: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="allow")
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    granted_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=clock.now)

    __table_args__ = (
        sa.Index("ix_agent_permissions_agent", "tenant_id", "agent_id", "created_at"),
        sa.CheckConstraint("effect IN ('allow', 'deny')", name="ck_agent_permissions_effect"),
    )

"""Non-human identities: service accounts and AI agents share one table and one lifecycle."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi.extensions import db
from nhi.models.base import IdMixin, TenantMixin, TimestampMixin, UTCDateTime

NHI_TYPES = ("service_account", "ai_agent")
STATUSES = ("active", "suspended", "expired", "decommissioned")
RISK_LEVELS = ("low", "medium", "high", "critical")
RISK_RANK = {level: rank for rank, level in enumerate(RISK_LEVELS, start=1)}


def higher_level(a: str | None, b: str | None) -> str:
    levels = [x for x in (a, b) if x]
    return max(levels, key=lambda lv: RISK_RANK[lv]) if levels else "medium"


class Identity(IdMixin, TenantMixin, TimestampMixin, db.Model):  # type: ignore[name-defined]
    """One row per NHI. Type-specific columns are nullable (single-table design) so that the
    unified inventory, risk summary, staleness report and campaigns read one table."""

    __tablename__ = "identities"

    nhi_type: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.String(2000))
    owner_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False, index=True)
    # Stored status; "expired" is also derived on read from expires_at (see effective_status).
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, default="active")
    suspension_reason: Mapped[str | None] = mapped_column(sa.String(2000))
    risk_level: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="medium")
    risk_score: Mapped[int | None] = mapped_column(sa.Integer)
    computed_risk_level: Mapped[str | None] = mapped_column(sa.String(10))
    # Denormalised max(risk_level, computed_risk_level), kept by the services so that filters and
    # summaries are plain indexed SQL.
    effective_risk_level: Mapped[str] = mapped_column(
        sa.String(10), nullable=False, default="medium"
    )
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_certified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Tokens issued before this instant are rejected (credential revocation cutoff).
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every write; per-process caches of decision inputs are keyed on it.
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)

    # AI agents only.
    model: Mapped[str | None] = mapped_column(sa.String(200))
    max_actions_per_minute: Mapped[int | None] = mapped_column(sa.Integer)

    __table_args__ = (
        sa.Index(
            "uq_identities_live_name",
            "tenant_id",
            "nhi_type",
            "name",
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        sa.Index("ix_identities_tenant_type_status", "tenant_id", "nhi_type", "status"),
        sa.CheckConstraint(
            "nhi_type IN ('service_account', 'ai_agent')", name="ck_identities_nhi_type"
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'expired', 'decommissioned')",
            name="ck_identities_status",
        ),
    )

    def effective_status(self, now: datetime) -> str:
        if self.status == "active" and self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return self.status

    def to_dict(self, now: datetime) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "nhi_type": self.nhi_type,
            "name": self.name,
            "description": self.description,
            "owner_id": self.owner_id,
            "status": self.effective_status(now),
            "risk_level": self.risk_level,
            "risk_score": self.risk_score,
            "computed_risk_level": self.computed_risk_level,
            "effective_risk_level": self.effective_risk_level,
            "expires_at": self.expires_at,
            "last_activity_at": self.last_activity_at,
            "last_certified_at": self.last_certified_at,
            "suspension_reason": self.suspension_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.nhi_type == "ai_agent":
            data["model"] = self.model
            data["max_actions_per_minute"] = self.max_actions_per_minute
        return data


def effective_status_expr(now: datetime) -> sa.ColumnElement[str]:
    """SQL twin of ``Identity.effective_status``."""
    col = Identity.status
    return sa.case(
        (
            sa.and_(
                col == "active",
                Identity.expires_at.is_not(None),
                Identity.expires_at <= now,
            ),
            sa.literal("expired"),
        ),
        else_=col,
    )

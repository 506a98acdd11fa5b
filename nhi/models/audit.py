"""The append-only audit log and the per-tenant head of its hash chain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi.extensions import db
from nhi.models.base import JSONType, TenantMixin, UTCDateTime, new_id


class AuditEvent(TenantMixin, db.Model):  # type: ignore[name-defined]
    """One immutable fact. Rows are appended without touching any shared row, so writers never
    queue behind each other; ``seal_chain`` later links unsealed rows into the tenant's chain
    (``chain_index``/``prev_hash``/``hash``)."""

    __tablename__ = "audit_events"

    # Insertion order (SQLite's rowid, a PostgreSQL identity); the public id is the UUID.
    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False, unique=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    event_type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    actor_id: Mapped[str | None] = mapped_column(sa.String(64))
    actor_type: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    nhi_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    resource: Mapped[str | None] = mapped_column(sa.String(300))
    action: Mapped[str | None] = mapped_column(sa.String(100))
    decision: Mapped[str | None] = mapped_column(sa.String(20))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    decision_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    approval_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    chain_index: Mapped[int | None] = mapped_column(sa.BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(sa.String(64))
    hash: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (
        sa.Index("ix_audit_tenant_time", "tenant_id", "occurred_at"),
        sa.Index("ix_audit_tenant_nhi_time", "tenant_id", "nhi_id", "occurred_at"),
        sa.Index("ix_audit_tenant_chain", "tenant_id", "chain_index", unique=True),
        sa.Index("ix_audit_decision", "tenant_id", "decision_id"),
    )


class AuditChainHead(db.Model):  # type: ignore[name-defined]
    """Where a tenant's chain ends. Locked only by the sealer, never by request writers."""

    __tablename__ = "audit_chain_heads"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    last_index: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    last_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

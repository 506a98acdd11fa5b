"""Tools that agents invoke, and the per-tenant version stamp of the tool catalogue."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi.extensions import db
from nhi.models.base import IdMixin, JSONType, TenantMixin, TimestampMixin


class Tool(IdMixin, TenantMixin, TimestampMixin, db.Model):  # type: ignore[name-defined]
    """A registered capability; ``parameters_schema`` is a JSON Schema checked at authorize."""

    __tablename__ = "tools"

    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.String(2000))
    category: Mapped[str | None] = mapped_column(sa.String(100))
    risk_level: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="medium")
    requires_approval: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    parameters_schema: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict
    )

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "name", name="uq_tools_tenant_name"),
        sa.Index("ix_tools_tenant_category", "tenant_id", "category"),
    )


class ToolCatalogVersion(db.Model):  # type: ignore[name-defined]
    """Bumped by every tool write of a tenant; per-process tool caches are keyed on it."""

    __tablename__ = "tool_catalog_versions"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=1)

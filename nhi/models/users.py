"""Local human users (most humans live in the customer's IdP; these serve sign-in and demos)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi.extensions import db
from nhi.models.base import IdMixin, JSONType, TenantMixin, TimestampMixin

HUMAN_ROLES = ("admin", "reviewer", "viewer")


class User(IdMixin, TenantMixin, TimestampMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(sa.String(320), nullable=False, unique=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    roles: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)

"""Column types and mixins shared by every aggregate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from nhi import clock


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no time zones) and always hands back aware UTC datetimes."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)


class TenantMixin:
    # No foreign key: a tenant is whatever the token's `tid` says (DESIGN.md §1, Tenancy).
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False, index=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=clock.now, onupdate=clock.now
    )


def as_dict(row: Any, *names: str) -> dict[str, Any]:
    return {n: getattr(row, n) for n in names}


def contains_text(term: str, *columns: Any) -> sa.ColumnElement[bool]:
    """Case-insensitive substring match of ``term`` in any of ``columns``; LIKE wildcards in the
    term are literal characters."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return sa.or_(*(column.ilike(pattern, escape="\\") for column in columns))


def upsert_insert(model: Any) -> Any:
    """``INSERT`` for ``model`` in the session's dialect, with ``on_conflict_do_*`` (PostgreSQL
    and SQLite both have them, each in its own dialect module)."""
    from nhi.extensions import db

    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)

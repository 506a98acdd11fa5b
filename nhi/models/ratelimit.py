"""Rate-limit state for the embedded mode (no Redis): a lock row and a sliding log per key."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from nhi.extensions import db
from nhi.models.base import UTCDateTime


class RateLimitKey(db.Model):  # type: ignore[name-defined]
    """One row per limited key: ``hits`` is the number of its rows in ``rate_limit_hits``.

    Admission is a conditional upsert of this row (``hits < limit``), which the database
    evaluates on the latest row version under the row lock, so it is exact under concurrency.
    """

    __tablename__ = "rate_limit_keys"

    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    hits: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    # A random token of the call admitted last (how the one-statement admission reports back).
    last_token: Mapped[str | None] = mapped_column(sa.String(32))


class RateLimitHit(db.Model):  # type: ignore[name-defined]
    """One admitted action; hits older than the window are deleted by the next call of the key."""

    __tablename__ = "rate_limit_hits"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (sa.Index("ix_rate_limit_hits_key_at", "key", "at"),)

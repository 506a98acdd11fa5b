"""Trailing-window rate limits that are exact across processes.

With Redis: one Lua script per call (a sorted-set sliding log: prune, count, admit). Without it:
the database, in the caller's transaction: a sliding log of hits plus a per-key row holding
their count. A call deletes the key's hits that left the window, then admits through one
conditional upsert of the key's row (``hits - expired < limit``), which the database evaluates
under the row lock on the latest version, then logs its hit. Concurrent callers of one key
queue on that row until the first commits, so exactly ``limit`` are admitted per window and no
call scans the log.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from redis import Redis
from sqlalchemy.dialects import postgresql, sqlite

from nhi.extensions import db
from nhi.models.ratelimit import RateLimitHit, RateLimitKey

WINDOW = timedelta(seconds=60)

# KEYS[1] = log; ARGV = now_us, window_us, limit, member. Returns {admitted, oldest_us}.
_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, oldest[2]}
"""
_scripts: dict[int, object] = {}


@dataclass(frozen=True, slots=True)
class RateResult:
    allowed: bool
    retry_after: int = 0


def _retry_after(oldest: datetime, now: datetime, window: timedelta) -> int:
    return max(1, math.ceil((oldest + window - now).total_seconds()))


def hit(
    key: str, limit: int, now: datetime, *, redis: Redis | None, window: timedelta = WINDOW
) -> RateResult:
    """Count one action for ``key`` if fewer than ``limit`` happened in the trailing window."""
    if redis is not None:
        return _redis_hit(redis, key, limit, now, window)
    return _db_hit(key, limit, now, window)


def _micros(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def _redis_hit(redis: Redis, key: str, limit: int, now: datetime, window: timedelta) -> RateResult:
    script = _scripts.get(id(redis))
    if script is None:
        script = redis.register_script(_LUA)
        _scripts[id(redis)] = script
    window_us = int(window.total_seconds() * 1_000_000)
    admitted, oldest = script(  # type: ignore[operator]
        keys=[f"nhi:rl:{key}"], args=[_micros(now), window_us, limit, uuid.uuid4().hex]
    )
    if int(admitted) == 1:
        return RateResult(True)
    oldest_at = datetime.fromtimestamp(float(oldest) / 1_000_000, now.tzinfo)
    return RateResult(False, _retry_after(oldest_at, now, window))


def _db_hit(key: str, limit: int, now: datetime, window: timedelta) -> RateResult:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    cut = now - window
    # 1. Forget hits that left the window. Each old row is deleted (and so subtracted from the
    #    key's count below) by exactly one transaction. On SQLite this first write also takes
    #    the database's write lock, which serialises the whole check.
    expired = db.session.execute(
        sa.delete(RateLimitHit)
        .where(RateLimitHit.key == key, RateLimitHit.at <= cut)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    # 2. Admit while fewer than ``limit`` remain: the conditional upsert locks the key's row
    #    and evaluates the condition on its latest committed version.
    stmt = insert(RateLimitKey).values(key=key, hits=1)
    remaining = RateLimitKey.hits - expired
    admitted = db.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[RateLimitKey.key],
            set_={"hits": remaining + 1},
            where=remaining < limit,
        ).returning(RateLimitKey.hits)
    ).first()
    if admitted is not None:
        db.session.execute(sa.insert(RateLimitHit).values(key=key, at=now))
        return RateResult(True)
    if expired:
        db.session.execute(
            sa.update(RateLimitKey).where(RateLimitKey.key == key).values(hits=remaining)
        )
    oldest = db.session.execute(
        sa.select(sa.func.min(RateLimitHit.at)).where(
            RateLimitHit.key == key, RateLimitHit.at > cut
        )
    ).scalar_one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return RateResult(False, _retry_after(oldest or now, now, window))

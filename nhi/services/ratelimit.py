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

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError

from nhi.extensions import db
from nhi.models.ratelimit import RateLimitHit

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


log = logging.getLogger(__name__)


def hit(
    key: str, limit: int, now: datetime, *, redis: Redis | None, window: timedelta = WINDOW
) -> RateResult:
    """Count one action for ``key`` if fewer than ``limit`` happened in the trailing window.

    With Redis unreachable the database counts instead, so authorize keeps answering (every
    process that cannot reach Redis shares the database's count; the two counts are not merged,
    which may admit up to ``limit`` more in the minute of an outage).
    """
    if redis is not None:
        try:
            return _redis_hit(redis, key, limit, now, window)
        except RedisError as exc:
            log.warning("rate limit: Redis unreachable (%s); counting in the database", exc)
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


# PostgreSQL: the three steps below in one statement (one round trip). The DELETE waits for
# rows another transaction is deleting and then skips them; ON CONFLICT DO UPDATE locks the
# key's row and reads its latest version, so concurrent calls queue and count exactly.
_PG_ADMIT = sa.text(
    """
    WITH expired AS (
        DELETE FROM rate_limit_hits WHERE key = :key AND at <= :cut RETURNING 1
    ), gone AS (
        SELECT count(*) AS n FROM expired
    ), admit AS (
        INSERT INTO rate_limit_keys AS k (key, hits, last_token) VALUES (:key, 1, :token)
        ON CONFLICT (key) DO UPDATE SET
            hits = k.hits - (SELECT n FROM gone)
                + CASE WHEN k.hits - (SELECT n FROM gone) < :limit THEN 1 ELSE 0 END,
            last_token = CASE WHEN k.hits - (SELECT n FROM gone) < :limit
                THEN :token ELSE k.last_token END
        RETURNING k.last_token
    )
    INSERT INTO rate_limit_hits (key, at)
    SELECT :key, :now FROM admit WHERE admit.last_token = :token
    RETURNING id
    """
)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _db_hit(key: str, limit: int, now: datetime, window: timedelta) -> RateResult:
    cut = now - window
    if db.session.get_bind().dialect.name == "postgresql":
        params = {
            "key": key,
            "cut": _naive(cut),
            "now": _naive(now),
            "limit": limit,
            "token": uuid.uuid4().hex,
        }
        if db.session.execute(_PG_ADMIT, params).first() is not None:
            return RateResult(True)
        return _denied(key, now, window)
    # SQLite has no data-modifying CTEs: the same steps as three statements, sent straight to
    # the driver (they run on every call). The first write takes the database's write lock,
    # which serialises the whole check. Timestamps use SQLAlchemy's SQLite DateTime format.
    conn = db.session.connection()
    stamp_now, stamp_cut = _sqlite_stamp(now), _sqlite_stamp(cut)
    # 1. Forget hits that left the window; each is subtracted from the key's count once.
    expired = conn.exec_driver_sql(
        "DELETE FROM rate_limit_hits WHERE key = ? AND at <= ?", (key, stamp_cut)
    ).rowcount
    # 2. Admit while fewer than ``limit`` remain.
    admitted = conn.exec_driver_sql(
        "INSERT INTO rate_limit_keys (key, hits) VALUES (?, 1) ON CONFLICT (key) DO UPDATE "
        "SET hits = hits - ? + 1 WHERE hits - ? < ? RETURNING hits",
        (key, expired, expired, limit),
    ).first()
    if admitted is not None:
        # 3. Log the hit.
        conn.exec_driver_sql(
            "INSERT INTO rate_limit_hits (key, at) VALUES (?, ?)", (key, stamp_now)
        )
        return RateResult(True)
    if expired:
        conn.exec_driver_sql(
            "UPDATE rate_limit_keys SET hits = hits - ? WHERE key = ?", (expired, key)
        )
    return _denied(key, now, window)


def _sqlite_stamp(value: datetime) -> str:
    return _naive(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _denied(key: str, now: datetime, window: timedelta) -> RateResult:
    oldest = db.session.execute(
        sa.select(sa.func.min(RateLimitHit.at)).where(
            RateLimitHit.key == key, RateLimitHit.at > now - window
        )
    ).scalar_one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return RateResult(False, _retry_after(oldest or now, now, window))

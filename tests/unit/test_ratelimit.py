"""The rate limiter against a reference sliding log, in the database and in Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhi.extensions import db
from nhi.models import RateLimitHit, RateLimitKey
from nhi.services import ratelimit
from tests.conftest import REQUIRE_SERVICES

REDIS_URL = "redis://127.0.0.1:6379/0"
START = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


def reference(gaps_ms: list[int], limit: int) -> list[bool]:
    """Admit a call when fewer than ``limit`` admitted calls lie in the trailing 60 s."""
    admitted: list[datetime] = []
    out = []
    now = START
    for gap in gaps_ms:
        now += timedelta(milliseconds=gap)
        recent = [t for t in admitted if t > now - timedelta(seconds=60)]
        ok = len(recent) < limit
        if ok:
            admitted.append(now)
        out.append(ok)
    return out


@pytest.fixture(params=["database", "redis"])
def backend(request, app):
    if request.param == "database":
        return None
    conn = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        conn.ping()
    except redis.RedisError:
        if REQUIRE_SERVICES:
            pytest.fail("Redis is required (NHI_TEST_REQUIRE_SERVICES) but not reachable")
        pytest.skip("Redis not reachable")
    return conn


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    gaps=st.lists(st.integers(0, 30_000), min_size=1, max_size=25),
    limit=st.integers(1, 5),
)
def test_matches_a_sliding_log(app, backend, gaps, limit):
    key = f"test:{uuid.uuid4()}"
    got = []
    with app.app_context():
        now = START
        for gap in gaps:
            now += timedelta(milliseconds=gap)
            got.append(ratelimit.hit(key, limit, now, redis=backend).allowed)
            db.session.commit()
        if backend is None:
            hits = db.session.execute(db.select(RateLimitHit).where(RateLimitHit.key == key)).all()
            row = db.session.get(RateLimitKey, key)
            assert row is not None and row.hits == len(hits)
            assert len(hits) <= limit
        db.session.remove()
    assert got == reference(gaps, limit)


def test_retry_after_counts_from_the_oldest_hit(app, backend):
    key = f"test:{uuid.uuid4()}"
    with app.app_context():
        assert ratelimit.hit(key, 2, START, redis=backend).allowed
        db.session.commit()
        assert ratelimit.hit(key, 2, START + timedelta(seconds=20), redis=backend).allowed
        db.session.commit()
        late = ratelimit.hit(key, 2, START + timedelta(seconds=45.5), redis=backend)
        db.session.commit()
        db.session.remove()
    assert late.allowed is False and late.retry_after == 15

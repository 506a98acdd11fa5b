"""State transitions are race-safe: concurrent callers get exactly one winner."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from typing import Any

from nhi.models import AuditEvent, Identity
from tests.conftest import run_together


def _race(app: Any, calls: list[tuple[str, str, dict[str, Any], dict[str, str]]]) -> list[int]:
    """Each (method, url, body, headers) from its own test client, all released at once."""

    def request(method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        return app.test_client().open(url, method=method, json=body, headers=headers).status_code

    return run_together([functools.partial(request, *c) for c in calls])


def test_concurrent_suspends_have_one_winner(app, client, admin, db):
    for trial in range(15):
        body = {"name": f"racer-{trial}", "owner_id": str(uuid.uuid4())}
        sa_id = client.post("/nhi/service-accounts", json=body, headers=admin).get_json()["id"]
        url = f"/nhi/service-accounts/{sa_id}/suspend"
        codes = _race(app, [("POST", url, {"reason": f"r{i}"}, admin) for i in range(2)])
        assert sorted(codes) == [200, 409], codes
        db.session.expire_all()
        row = db.session.get(Identity, uuid.UUID(sa_id))
        assert row.status == "suspended" and row.version == 2
        suspends = (
            db.session.execute(
                db.select(AuditEvent).where(
                    AuditEvent.nhi_id == row.id, AuditEvent.event_type == "nhi.suspended"
                )
            )
            .scalars()
            .all()
        )
        assert len(suspends) == 1 and suspends[0].reason == row.suspension_reason


def test_concurrent_creates_with_one_name_have_one_winner(app, admin, db):
    body = {"name": "same-name", "owner_id": str(uuid.uuid4())}
    codes = _race(app, [("POST", "/nhi/service-accounts", body, admin) for _ in range(4)])
    assert Counter(codes) == Counter({201: 1, 409: 3}), codes
    assert len(db.session.execute(db.select(Identity)).scalars().all()) == 1

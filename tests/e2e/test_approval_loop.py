"""The HITL loop against a live server (gunicorn, 2 processes): the guide's sequence, races
between deciders, and single use under concurrent authorize calls."""

from __future__ import annotations

import functools
import threading
import uuid
from collections import Counter
from typing import Any

import pytest
import requests

from nhi.models import AuditEvent
from nhi.models.approvals import Approval
from tests.authz_helpers import grant, make_agent, make_tool
from tests.conftest import run_together

pytestmark = pytest.mark.e2e
PARAMS = {"query": "SELECT region, sum(total) FROM sales GROUP BY 1", "database": "analytics"}


@pytest.fixture
def loop(client, admin, auth) -> dict[str, Any]:
    agent = make_agent(client, admin)
    make_tool(client, admin)
    grant(
        client,
        admin,
        agent["id"],
        resource="tool:sql-query",
        action="invoke",
        conditions={"max_rows": 5000},
    )
    return {
        "agent": agent["id"],
        "token": auth("agent", sub=agent["id"]),
        "reviewer": auth("reviewer"),
        "admin": admin,
    }


def _authorize(url: str, loop: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    resp = requests.post(
        f"{url}/nhi/agents/{loop['agent']}/authorize",
        headers=loop["token"],
        json={"tool": "sql-query", "parameters": PARAMS, "context": ctx},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_sequence_of_the_guide_over_http(live_server, loop):
    first = _authorize(live_server, loop, rows=200)
    assert first["requires_approval"] is True and first["authorized"] is False
    approval_id = first["approval_id"]

    # the agent long-polls while the reviewer lists and approves
    polled: dict[str, Any] = {}

    def poll() -> None:
        polled.update(
            requests.get(
                f"{live_server}/nhi/approvals/{approval_id}/status?wait=20",
                headers=loop["token"],
                timeout=30,
            ).json()
        )

    poller = threading.Thread(target=poll)
    poller.start()
    pending = requests.get(
        f"{live_server}/nhi/approvals?status=pending&limit=20", headers=loop["reviewer"], timeout=10
    ).json()
    assert [i["id"] for i in pending["items"]] == [approval_id]
    decided = requests.post(
        f"{live_server}/nhi/approvals/{approval_id}/approve",
        headers=loop["reviewer"],
        json={
            "reason": "Action is within acceptable parameters",
            "conditions": {"max_rows": 1000, "expires_in_minutes": 30},
        },
        timeout=10,
    )
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    poller.join(timeout=25)
    assert polled["status"] == "approved"
    assert polled["conditions"] == {"max_rows": 1000, "expires_in_minutes": 30}

    allowed = _authorize(live_server, loop, rows=1000)
    assert allowed["authorized"] is True and allowed["approval_id"] == approval_id
    again = _authorize(live_server, loop, rows=1000)
    assert again["authorized"] is False and again["approval_id"] != approval_id


def test_approve_and_deny_race_has_one_winner(live_server, loop, db):
    for _trial in range(10):
        params = {**PARAMS, "query": f"SELECT {uuid.uuid4().int % 1000}"}
        opened = requests.post(
            f"{live_server}/nhi/agents/{loop['agent']}/authorize",
            headers=loop["token"],
            timeout=10,
            json={"tool": "sql-query", "parameters": params},
        ).json()
        approval_id = opened["approval_id"]
        base = f"{live_server}/nhi/approvals/{approval_id}"
        approve = functools.partial(
            requests.post, f"{base}/approve", headers=loop["reviewer"], timeout=10
        )
        deny = functools.partial(
            requests.post,
            f"{base}/deny",
            headers=loop["admin"],
            timeout=10,
            json={"reason": "race"},
        )
        codes = [r.status_code for r in run_together([approve, deny])]
        assert sorted(codes) == [200, 409], codes
        db.session.expire_all()
        row = db.session.get(Approval, uuid.UUID(approval_id))
        assert row.status in ("approved", "denied")
        decisions = (
            db.session.execute(
                db.select(AuditEvent).where(
                    AuditEvent.approval_id == row.id,
                    AuditEvent.event_type.in_(("approval.approved", "approval.denied")),
                )
            )
            .scalars()
            .all()
        )
        assert [d.event_type for d in decisions] == [f"approval.{row.status}"]


def test_an_approval_is_used_once_under_concurrent_authorize(live_server, loop, db):
    for _trial in range(5):
        opened = _authorize(live_server, loop)
        approval_id = opened["approval_id"]
        assert (
            requests.post(
                f"{live_server}/nhi/approvals/{approval_id}/approve",
                headers=loop["reviewer"],
                timeout=10,
            ).status_code
            == 200
        )
        results = run_together([lambda: _authorize(live_server, loop) for _ in range(4)])
        outcomes = Counter(r["authorized"] for r in results)
        assert outcomes == Counter({True: 1, False: 3}), results
        winners = [r for r in results if r["authorized"]]
        assert winners[0]["approval_id"] == approval_id
        db.session.expire_all()
        assert db.session.get(Approval, uuid.UUID(approval_id)).used_at is not None
        # the losers wait on one fresh request, not one each
        fresh = {r["approval_id"] for r in results if not r["authorized"]}
        assert len(fresh) == 1 and approval_id not in fresh
        requests.post(
            f"{live_server}/nhi/approvals/{fresh.pop()}/deny",
            timeout=10,
            headers=loop["reviewer"],
            json={"reason": "next trial"},
        )

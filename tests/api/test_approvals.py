"""HITL approvals API: the guide's loop, who decides, conditions, expiry, bad input."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from nhi import clock
from nhi.models import AuditEvent, OutboxEvent
from nhi.models.approvals import Approval
from tests.authz_helpers import decide, grant, make_agent, make_tool
from tests.conftest import assert_problem

PARAMS = {"query": "SELECT * FROM sales", "database": "analytics"}


@pytest.fixture
def setup(client, admin, auth) -> dict[str, Any]:
    """An agent allowed to invoke the guide's sql-query tool (which requires approval), capped
    at 5000 rows, with its own token."""
    agent = make_agent(client, admin)
    make_tool(client, admin)
    perm = grant(
        client,
        admin,
        agent["id"],
        resource="tool:sql-query",
        action="invoke",
        conditions={"max_rows": 5000},
    )
    token = auth("agent", sub=agent["id"])
    return {"agent": agent, "perm": perm, "token": token}


def request_approval(client, setup, rows: int = 100, params: dict | None = None) -> dict:
    body = decide(
        client,
        setup["token"],
        setup["agent"]["id"],
        tool="sql-query",
        parameters=params or PARAMS,
        context={"rows": rows},
    )
    assert body["authorized"] is False and body["requires_approval"] is True
    assert body["approval_id"]
    return body


def stored(db, approval_id: str) -> Approval:
    db.session.expire_all()
    return db.session.get(Approval, uuid.UUID(approval_id))


def test_the_guides_flow_end_to_end(client, admin, auth, setup, db):
    reviewer = auth("reviewer")
    first = request_approval(client, setup)
    approval_id = first["approval_id"]
    # repeated calls while pending return the same request
    again = request_approval(client, setup)
    assert again["approval_id"] == approval_id

    pending = client.get("/nhi/approvals?status=pending&limit=20", headers=reviewer).get_json()
    assert pending["total"] == 1
    item = pending["items"][0]
    assert item["id"] == approval_id and item["status"] == "pending"
    assert item["agent_name"] == setup["agent"]["name"] and item["tool"] == "sql-query"
    assert item["parameters"] == PARAMS and item["context"] == {"rows": 100}
    assert item["requested_by"] == setup["agent"]["id"]

    status = client.get(f"/nhi/approvals/{approval_id}/status", headers=setup["token"])
    assert status.status_code == 200 and status.get_json()["status"] == "pending"

    resp = client.post(
        f"/nhi/approvals/{approval_id}/approve",
        json={
            "reason": "Action is within acceptable parameters",
            "conditions": {"max_rows": 1000, "expires_in_minutes": 30},
        },
        headers=reviewer,
    )
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "approved"

    status = client.get(f"/nhi/approvals/{approval_id}/status", headers=setup["token"]).get_json()
    assert status["status"] == "approved"
    assert status["conditions"] == {"max_rows": 1000, "expires_in_minutes": 30}
    assert status["decided_by"] and status["decided_at"].endswith("Z")

    # over the approved max_rows: denied, and the approval is not used up
    over = decide(
        client,
        setup["token"],
        setup["agent"]["id"],
        tool="sql-query",
        parameters=PARAMS,
        context={"rows": 1001},
    )
    assert over["authorized"] is False and "max_rows" in over["reason"]
    assert stored(db, approval_id).used_at is None

    ok = decide(
        client,
        setup["token"],
        setup["agent"]["id"],
        tool="sql-query",
        parameters=PARAMS,
        context={"rows": 1000},
    )
    assert ok["authorized"] is True and ok["approval_id"] == approval_id
    assert ok["conditions"]["max_rows"] == 1000
    assert stored(db, approval_id).used_at is not None

    # single use: the next call opens a fresh request
    next_call = request_approval(client, setup)
    assert next_call["approval_id"] != approval_id

    kinds = [
        e.event_type
        for e in db.session.execute(
            db.select(OutboxEvent).order_by(OutboxEvent.occurred_at)
        ).scalars()
    ]
    assert kinds.count("approval.requested") == 2 and kinds.count("approval.approved") == 1
    payloads = {
        o.event_type: o.data
        for o in db.session.execute(db.select(OutboxEvent)).scalars()
        if o.data.get("id") == approval_id
    }
    # every approval.* event carries the same shape
    assert set(payloads["approval.requested"]) == set(payloads["approval.approved"])
    assert payloads["approval.requested"]["agent_name"] == setup["agent"]["name"]
    assert payloads["approval.approved"]["conditions"] == {
        "max_rows": 1000,
        "expires_in_minutes": 30,
    }
    audited = {
        e.event_type
        for e in db.session.execute(
            db.select(AuditEvent).where(AuditEvent.approval_id == uuid.UUID(approval_id))
        ).scalars()
    }
    assert {"approval.requested", "approval.approved"} <= audited
    approved_row = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.event_type == "approval.approved")
    ).scalar_one()
    assert approved_row.decision == "approved"
    assert approved_row.details["conditions"] == {"max_rows": 1000, "expires_in_minutes": 30}


def test_deny_shows_the_reason_and_the_next_call_asks_again(client, auth, setup, db):
    reviewer = auth("reviewer")
    approval_id = request_approval(client, setup)["approval_id"]
    reason = "Query scope is too broad, please narrow the WHERE clause"
    resp = client.post(
        f"/nhi/approvals/{approval_id}/deny", json={"reason": reason}, headers=reviewer
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "denied"
    status = client.get(f"/nhi/approvals/{approval_id}/status", headers=setup["token"]).get_json()
    assert status["status"] == "denied" and status["reason"] == reason
    fresh = request_approval(client, setup)
    assert fresh["approval_id"] != approval_id
    assert stored(db, approval_id).status == "denied"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({}, "reason"),
        ({"reason": "x" * 2001}, "reason"),
        ({"reason": "ok", "extra": 1}, "extra"),
    ],
)
def test_deny_needs_a_reason(client, auth, setup, db, body, field):
    approval_id = request_approval(client, setup)["approval_id"]
    resp = client.post(f"/nhi/approvals/{approval_id}/deny", json=body, headers=auth("reviewer"))
    assert_problem(resp, 422, field=field)
    assert stored(db, approval_id).status == "pending"


@pytest.mark.parametrize(
    "conditions",
    [
        {"max_rows": -1},
        {"max_rows": 5001},
        {"max_rows": "10"},
        {"expires_in_minutes": 0},
        {"expires_in_minutes": 1441},
        {"scope": "all"},
    ],
)
def test_conditions_only_narrow(client, auth, setup, db, conditions):
    approval_id = request_approval(client, setup)["approval_id"]
    resp = client.post(
        f"/nhi/approvals/{approval_id}/approve",
        json={"conditions": conditions},
        headers=auth("reviewer"),
    )
    assert_problem(resp, 422)
    row = stored(db, approval_id)
    assert (row.status, row.decided_by, row.conditions) == ("pending", None, {})


def test_approval_without_body_uses_defaults(client, auth, setup, db):
    approval_id = request_approval(client, setup)["approval_id"]
    resp = client.post(f"/nhi/approvals/{approval_id}/approve", headers=auth("admin"))
    assert resp.status_code == 200
    assert resp.get_json()["conditions"] == {"expires_in_minutes": 60}
    row = stored(db, approval_id)
    assert row.expires_at - row.decided_at == timedelta(minutes=60)


def test_who_may_decide(client, admin, auth, setup, db):
    approval_id = request_approval(client, setup)["approval_id"]
    url = f"/nhi/approvals/{approval_id}"
    # NHI tokens never decide, not even another agent's
    assert_problem(client.post(f"{url}/approve", headers=setup["token"]), 403)
    other_agent = make_agent(client, admin)
    assert_problem(client.post(f"{url}/approve", headers=auth("agent", sub=other_agent["id"])), 403)
    # other humans neither decide nor read
    viewer = auth("viewer")
    assert_problem(client.post(f"{url}/approve", headers=viewer), 403)
    assert_problem(client.get(url, headers=viewer), 403)
    assert_problem(client.get(f"{url}/status", headers=viewer), 403)
    assert_problem(client.get("/nhi/approvals", headers=viewer), 403)
    # another agent may not read this agent's request status
    assert_problem(client.get(f"{url}/status", headers=auth("agent", sub=other_agent["id"])), 403)
    # another tenant sees nothing
    stranger = auth("admin", tid=uuid.uuid4())
    assert_problem(client.post(f"{url}/approve", headers=stranger), 404)
    assert_problem(client.get(f"{url}/status", headers=stranger), 404)
    assert stored(db, approval_id).status == "pending"


def test_nobody_decides_their_own_request(client, admin, auth, setup, db):
    human = uuid.uuid4()
    own = auth("admin", sub=human)
    body = decide(client, own, setup["agent"]["id"], tool="sql-query", parameters=PARAMS)
    assert body["requires_approval"] is True
    approval_id = body["approval_id"]
    assert stored(db, approval_id).requested_by == str(human)
    assert_problem(client.post(f"/nhi/approvals/{approval_id}/approve", headers=own), 403)
    assert_problem(
        client.post(f"/nhi/approvals/{approval_id}/deny", json={"reason": "no"}, headers=own), 403
    )
    assert client.post(f"/nhi/approvals/{approval_id}/approve", headers=admin).status_code == 200


def test_decided_requests_are_409(client, auth, setup, db):
    reviewer = auth("reviewer")
    approval_id = request_approval(client, setup)["approval_id"]
    url = f"/nhi/approvals/{approval_id}"
    assert client.post(f"{url}/approve", headers=reviewer).status_code == 200
    body = assert_problem(
        client.post(f"{url}/deny", json={"reason": "late"}, headers=reviewer), 409
    )
    assert body["current_status"] == "approved" and "already approved" in body["detail"]
    assert_problem(client.post(f"{url}/approve", headers=reviewer), 409)
    assert stored(db, approval_id).status == "approved"
    assert_problem(client.post(f"/nhi/approvals/{uuid.uuid4()}/approve", headers=reviewer), 404)
    assert_problem(client.post("/nhi/approvals/not-a-uuid/approve", headers=reviewer), 404)


def test_pending_requests_expire_exactly_when_read(client, app, auth, setup, db):
    reviewer = auth("reviewer")
    approval_id = request_approval(client, setup)["approval_id"]
    ttl = app.config["APPROVAL_TTL_SECONDS"]
    clock.advance(timedelta(seconds=ttl - 1))
    assert (
        client.get(f"/nhi/approvals/{approval_id}", headers=reviewer).get_json()["status"]
        == "pending"
    )
    clock.advance(timedelta(seconds=1))
    assert (
        client.get(f"/nhi/approvals/{approval_id}", headers=reviewer).get_json()["status"]
        == "expired"
    )
    assert client.get("/nhi/approvals?status=expired", headers=reviewer).get_json()["total"] == 1
    assert client.get("/nhi/approvals?status=pending", headers=reviewer).get_json()["total"] == 0
    body = assert_problem(
        client.post(f"/nhi/approvals/{approval_id}/approve", headers=reviewer), 409
    )
    assert "expired" in body["detail"]
    assert stored(db, approval_id).status == "pending"  # nothing written by the refusal

    from nhi.services.approval_decisions import expire_due

    assert expire_due() == 1 and expire_due() == 0  # idempotent
    assert stored(db, approval_id).status == "expired"
    expired_events = (
        db.session.execute(
            db.select(OutboxEvent).where(OutboxEvent.event_type == "approval.expired")
        )
        .scalars()
        .all()
    )
    assert len(expired_events) == 1 and expired_events[0].data["id"] == approval_id


def test_approved_but_unused_approval_expires(client, auth, setup, db):
    approval_id = request_approval(client, setup)["approval_id"]
    client.post(
        f"/nhi/approvals/{approval_id}/approve",
        json={"conditions": {"expires_in_minutes": 5}},
        headers=auth("reviewer"),
    )
    clock.advance(timedelta(minutes=5))
    status = client.get(f"/nhi/approvals/{approval_id}/status", headers=setup["token"]).get_json()
    assert status["status"] == "expired"
    again = request_approval(client, setup)
    assert again["approval_id"] != approval_id


def test_list_filters_and_pagination(client, admin, auth, setup):
    reviewer = auth("reviewer")
    ids = [
        request_approval(client, setup, params={**PARAMS, "query": f"q{i}"})["approval_id"]
        for i in range(3)
    ]
    client.post(f"/nhi/approvals/{ids[0]}/deny", json={"reason": "no"}, headers=reviewer)
    listed = client.get("/nhi/approvals?limit=2", headers=reviewer).get_json()
    assert listed["total"] == 3 and [i["id"] for i in listed["items"]] == [ids[2], ids[1]]
    denied = client.get("/nhi/approvals?status=denied", headers=reviewer).get_json()
    assert [i["id"] for i in denied["items"]] == [ids[0]]
    by_agent = client.get(
        f"/nhi/approvals?agent_id={setup['agent']['id']}", headers=reviewer
    ).get_json()
    assert by_agent["total"] == 3
    other = client.get(f"/nhi/approvals?agent_id={uuid.uuid4()}", headers=reviewer).get_json()
    assert other["total"] == 0
    assert_problem(client.get("/nhi/approvals?status=maybe", headers=reviewer), 422, field="status")
    assert_problem(client.get("/nhi/approvals?agent_id=x", headers=reviewer), 422, field="agent_id")


@pytest.mark.parametrize("wait", ["-1", "31", "abc"])
def test_wait_out_of_range_is_422(client, setup, wait):
    approval_id = request_approval(client, setup)["approval_id"]
    resp = client.get(f"/nhi/approvals/{approval_id}/status?wait={wait}", headers=setup["token"])
    assert_problem(resp, 422, field="wait")


def test_wait_returns_as_soon_as_the_decision_lands(app, client, auth, setup):
    approval_id = request_approval(client, setup)["approval_id"]
    reviewer = auth("reviewer")

    def approve_soon() -> None:
        time.sleep(0.5)
        app.test_client().post(f"/nhi/approvals/{approval_id}/approve", headers=reviewer)

    threading.Thread(target=approve_soon).start()
    started = time.monotonic()
    resp = client.get(f"/nhi/approvals/{approval_id}/status?wait=10", headers=setup["token"])
    elapsed = time.monotonic() - started
    assert resp.get_json()["status"] == "approved"
    assert 0.4 < elapsed < 5  # woke on the decision, not at the end of the wait

    started = time.monotonic()
    resp = client.get(f"/nhi/approvals/{approval_id}/status?wait=5", headers=setup["token"])
    assert resp.get_json()["status"] == "approved" and time.monotonic() - started < 1


def test_cron_pass_persists_expiry(app, client, setup, db):
    approval_id = request_approval(client, setup)["approval_id"]
    clock.advance(timedelta(seconds=app.config["APPROVAL_TTL_SECONDS"] + 1))
    result = app.test_cli_runner().invoke(args=["jobs", "run-periodic"])
    assert result.exit_code == 0, result.output
    assert "expire_approvals: 1" in result.output
    assert stored(db, approval_id).status == "expired"
    audited = (
        db.session.execute(db.select(AuditEvent).where(AuditEvent.event_type == "approval.expired"))
        .scalars()
        .all()
    )
    assert [str(a.approval_id) for a in audited] == [approval_id]

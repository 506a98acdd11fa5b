"""AI agents: the guide's examples and the agent specifics of API.md (model, rate limit field)."""

from __future__ import annotations

import uuid

import pytest

from nhi.models import AuditEvent, Identity, OutboxEvent
from tests.authz_helpers import GUIDE_AGENT, OWNER, make_agent
from tests.conftest import assert_problem


def stored(db, identity_id: str) -> Identity:
    db.session.expire_all()
    row = db.session.get(Identity, uuid.UUID(identity_id))
    assert row is not None
    return row


def test_register_agent_as_in_the_guide(client, admin, tenant, db):
    resp = client.post("/nhi/agents", json=GUIDE_AGENT, headers=admin)
    assert resp.status_code == 201
    body = resp.get_json()
    assert resp.headers["Location"].endswith(f"/nhi/agents/{body['id']}")
    for key, value in GUIDE_AGENT.items():
        assert body[key] == value
    assert body["nhi_type"] == "ai_agent" and body["status"] == "active"
    assert body["tenant_id"] == str(tenant) and body["last_activity_at"] is None
    row = stored(db, body["id"])
    assert (row.nhi_type, row.model, row.max_actions_per_minute) == (
        "ai_agent",
        "claude-opus-4-6",
        30,
    )
    assert [e.event_type for e in db.session.execute(db.select(AuditEvent)).scalars()] == [
        "nhi.created"
    ]
    assert [o.event_type for o in db.session.execute(db.select(OutboxEvent)).scalars()] == [
        "nhi.created"
    ]


def test_default_rate_limit_is_60(client, admin, db):
    body = {"name": "plain", "owner_id": OWNER}
    created = client.post("/nhi/agents", json=body, headers=admin).get_json()
    assert created["max_actions_per_minute"] == 60 and created["model"] is None
    assert stored(db, created["id"]).max_actions_per_minute == 60


@pytest.mark.parametrize("value", [0, -1, 100_001, 10**12, "fast", 1.5, None])
def test_absurd_rate_limits_are_422_and_nothing_is_written(client, admin, db, value):
    body = {**GUIDE_AGENT, "max_actions_per_minute": value}
    assert_problem(
        client.post("/nhi/agents", json=body, headers=admin), 422, field="max_actions_per_minute"
    )
    assert db.session.execute(db.select(Identity)).first() is None
    assert db.session.execute(db.select(AuditEvent)).first() is None


@pytest.mark.parametrize("value", [1, 100_000])
def test_rate_limit_bounds_are_accepted(client, admin, value):
    agent = make_agent(client, admin, max_actions_per_minute=value)
    assert agent["max_actions_per_minute"] == value


def test_list_filters_search_and_summary(client, admin):
    a = make_agent(client, admin, name="data-analyst-bot")
    make_agent(
        client, admin, name="billing-helper", description="Reconciles INVOICES", risk_level="high"
    )
    c = make_agent(client, admin, name="pager_bot", risk_level="low")
    client.post(
        "/nhi/service-accounts",
        json={"name": "ci", "owner_id": OWNER, "nhi_type": "service_account"},
        headers=admin,
    )
    client.post(f"/nhi/agents/{c['id']}/suspend", json={"reason": "noisy"}, headers=admin)

    page = client.get("/nhi/agents?limit=20&offset=0", headers=admin).get_json()
    assert page["total"] == 3 and {i["nhi_type"] for i in page["items"]} == {"ai_agent"}
    assert all("model" in i and "max_actions_per_minute" in i for i in page["items"])
    names = lambda q: sorted(  # noqa: E731
        i["name"] for i in client.get(f"/nhi/agents?{q}", headers=admin).get_json()["items"]
    )
    assert names("search=invoices") == ["billing-helper"]
    assert names("search=_") == ["pager_bot"]
    assert names("status=suspended") == ["pager_bot"]
    assert names("status=active") == ["billing-helper", "data-analyst-bot"]
    assert names("risk_level=high") == ["billing-helper"]
    assert names(f"owner_id={OWNER}") == ["billing-helper", "data-analyst-bot", "pager_bot"]

    both = client.get("/nhi/identities", headers=admin).get_json()
    assert both["total"] == 4
    only = client.get("/nhi/identities?nhi_type=ai_agent", headers=admin).get_json()
    assert {i["id"] for i in only["items"]} >= {a["id"], c["id"]} and only["total"] == 3

    summary = client.get("/nhi/agents/summary", headers=admin).get_json()
    assert summary["total"] == 3
    assert summary["by_status"] == {"active": 2, "suspended": 1, "expired": 0, "decommissioned": 0}
    assert summary["by_risk_level"] == {"low": 1, "medium": 1, "high": 1, "critical": 0}


def test_update_agent_as_in_the_guide(client, admin, db):
    agent = make_agent(client, admin)
    before = stored(db, agent["id"]).version
    resp = client.patch(
        f"/nhi/agents/{agent['id']}",
        json={"description": "Updated agent description", "max_actions_per_minute": 50},
        headers=admin,
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["description"] == "Updated agent description"
    assert body["max_actions_per_minute"] == 50 and body["model"] == "claude-opus-4-6"
    row = stored(db, agent["id"])
    assert row.max_actions_per_minute == 50 and row.version == before + 1
    put = client.put(f"/nhi/agents/{agent['id']}", json={"model": "gpt-x"}, headers=admin)
    assert put.status_code == 200 and put.get_json()["model"] == "gpt-x"
    assert put.get_json()["max_actions_per_minute"] == 50
    for bad in ({"max_actions_per_minute": 0}, {"status": "active"}, {"owner_id": OWNER}):
        assert_problem(client.patch(f"/nhi/agents/{agent['id']}", json=bad, headers=admin), 422)
    assert stored(db, agent["id"]).model == "gpt-x"


def test_agent_lifecycle(client, admin, db):
    agent = make_agent(client, admin)
    url = f"/nhi/agents/{agent['id']}"
    assert client.post(f"{url}/suspend", json={"reason": "odd"}, headers=admin).status_code == 200
    assert_problem(client.post(f"{url}/suspend", json={"reason": "again"}, headers=admin), 409)
    back = client.post(f"{url}/reactivate", json={"reason": "fine"}, headers=admin)
    assert back.status_code == 200 and back.get_json()["status"] == "active"
    new_owner = str(uuid.uuid4())
    moved = client.post(f"{url}/transfer", json={"new_owner_id": new_owner}, headers=admin)
    assert moved.status_code == 200 and moved.get_json()["owner_id"] == new_owner
    assert client.delete(url, headers=admin).status_code == 204
    assert_problem(client.get(url, headers=admin), 404)
    assert stored(db, agent["id"]).deleted_at is not None


def test_agent_token_reads_only_itself(client, admin, auth):
    agent = make_agent(client, admin)
    other = make_agent(client, admin)
    token = auth("agent", sub=agent["id"])
    assert client.get(f"/nhi/agents/{agent['id']}", headers=token).status_code == 200
    assert_problem(client.get(f"/nhi/agents/{other['id']}", headers=token), 403)
    assert_problem(client.get("/nhi/agents", headers=token), 403)
    assert_problem(client.post("/nhi/agents", json=GUIDE_AGENT, headers=token), 403)


def test_agents_are_tenant_scoped_and_typed(client, admin, auth):
    agent = make_agent(client, admin)
    stranger = auth("admin", tid=uuid.uuid4())
    assert_problem(client.get(f"/nhi/agents/{agent['id']}", headers=stranger), 404)
    sa = client.post(
        "/nhi/service-accounts",
        json={"name": "ci", "owner_id": OWNER, "nhi_type": "service_account"},
        headers=admin,
    ).get_json()
    assert_problem(client.get(f"/nhi/agents/{sa['id']}", headers=admin), 404)
    assert_problem(
        client.post(
            "/nhi/agents", json={**GUIDE_AGENT, "nhi_type": "service_account"}, headers=admin
        ),
        422,
        field="nhi_type",
    )

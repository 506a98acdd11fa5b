"""Service accounts: the guide's examples and the lifecycle rules of API.md."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from nhi import clock
from nhi.models import AuditEvent, Identity, OutboxEvent
from tests.conftest import assert_problem

OWNER = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
NEW_OWNER = "b2c3d4e5-6789-0abc-def1-234567890abc"
GUIDE_BODY = {
    "name": "ci-pipeline-prod",
    "description": "Production CI/CD pipeline service account",
    "owner_id": OWNER,
    "nhi_type": "service_account",
    "risk_level": "medium",
}


def create(client: Any, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {**GUIDE_BODY, **overrides}
    resp = client.post("/nhi/service-accounts", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def stored(db: Any, identity_id: str) -> Identity:
    db.session.expire_all()
    row = db.session.get(Identity, uuid.UUID(identity_id))
    assert row is not None
    return row


def test_create_matches_the_guide(client, admin, tenant, db):
    resp = client.post("/nhi/service-accounts", json=GUIDE_BODY, headers=admin)
    assert resp.status_code == 201
    body = resp.get_json()
    assert resp.headers["Location"].endswith(f"/nhi/service-accounts/{body['id']}")
    for key in ("name", "description", "owner_id", "nhi_type", "risk_level"):
        assert body[key] == GUIDE_BODY[key]
    assert body["status"] == "active"
    assert body["tenant_id"] == str(tenant)
    assert uuid.UUID(body["id"]).version == 4
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
    assert "model" not in body
    row = stored(db, body["id"])
    assert row.tenant_id == tenant and row.name == "ci-pipeline-prod"
    events = db.session.execute(db.select(AuditEvent)).scalars().all()
    assert [(e.event_type, str(e.nhi_id)) for e in events] == [("nhi.created", body["id"])]
    outbox = db.session.execute(db.select(OutboxEvent)).scalars().all()
    assert [o.event_type for o in outbox] == ["nhi.created"]


def test_get_list_search_and_summary(client, admin):
    a = create(client, admin)
    create(client, admin, name="billing-sync", description="Syncs invoices", risk_level="high")
    create(client, admin, name="nightly_backup", description=None, risk_level="low")

    got = client.get(f"/nhi/service-accounts/{a['id']}", headers=admin)
    assert got.status_code == 200 and got.get_json()["name"] == "ci-pipeline-prod"

    page = client.get("/nhi/service-accounts?limit=20&offset=0", headers=admin).get_json()
    assert page["total"] == 3 and page["limit"] == 20 and page["offset"] == 0
    assert len(page["items"]) == 3

    found = client.get(
        "/nhi/service-accounts?status=active&search=ci-pipeline", headers=admin
    ).get_json()
    assert [i["name"] for i in found["items"]] == ["ci-pipeline-prod"]
    by_desc = client.get("/nhi/service-accounts?search=INVOICES", headers=admin).get_json()
    assert [i["name"] for i in by_desc["items"]] == ["billing-sync"]
    # LIKE wildcards in the search term are literal characters
    underscore = client.get("/nhi/service-accounts?search=_", headers=admin).get_json()
    assert [i["name"] for i in underscore["items"]] == ["nightly_backup"]
    high = client.get("/nhi/service-accounts?risk_level=high", headers=admin).get_json()
    assert [i["name"] for i in high["items"]] == ["billing-sync"]
    second = client.get("/nhi/service-accounts?limit=1&offset=1", headers=admin).get_json()
    assert second["total"] == 3 and len(second["items"]) == 1

    summary = client.get("/nhi/service-accounts/summary", headers=admin).get_json()
    assert summary == {
        "total": 3,
        "by_status": {"active": 3, "suspended": 0, "expired": 0, "decommissioned": 0},
        "by_risk_level": {"low": 1, "medium": 1, "high": 1, "critical": 0},
    }


def test_put_and_patch_are_partial_updates(client, admin, db):
    sa_ = create(client, admin)
    resp = client.put(
        f"/nhi/service-accounts/{sa_['id']}",
        json={"description": "Updated description", "risk_level": "high"},
        headers=admin,
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["description"] == "Updated description" and body["risk_level"] == "high"
    assert body["name"] == "ci-pipeline-prod" and body["owner_id"] == OWNER
    assert body["effective_risk_level"] == "high"
    resp = client.patch(
        f"/nhi/service-accounts/{sa_['id']}", json={"name": "ci-pipeline-v2"}, headers=admin
    )
    assert resp.status_code == 200 and resp.get_json()["description"] == "Updated description"
    row = stored(db, sa_["id"])
    assert (row.name, row.risk_level, row.version) == ("ci-pipeline-v2", "high", 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "suspended"}, "status"),
        ({"owner_id": NEW_OWNER}, "owner_id"),
        ({"tenant_id": str(uuid.uuid4())}, "tenant_id"),
        ({"risk_level": "extreme"}, "risk_level"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"description": "d" * 2001}, "description"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"model": "gpt"}, "model"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_update_rejects_bad_fields_and_keeps_state(client, admin, db, body, field):
    sa_ = create(client, admin)
    resp = client.patch(f"/nhi/service-accounts/{sa_['id']}", json=body, headers=admin)
    assert_problem(resp, 422, field=field)
    row = stored(db, sa_["id"])
    assert (row.status, str(row.owner_id), row.name, row.version) == (
        "active",
        OWNER,
        "ci-pipeline-prod",
        1,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GUIDE_BODY, "nhi_type": "ai_agent"}, "nhi_type"),
        ({**GUIDE_BODY, "owner_id": "not-a-uuid"}, "owner_id"),
        ({k: v for k, v in GUIDE_BODY.items() if k != "owner_id"}, "owner_id"),
        ({k: v for k, v in GUIDE_BODY.items() if k != "name"}, "name"),
        ({**GUIDE_BODY, "name": 42}, "name"),
        ({**GUIDE_BODY, "name": "   "}, "name"),
        ({**GUIDE_BODY, "name": "n" * 201}, "name"),
        ({**GUIDE_BODY, "status": "active"}, "status"),
        ({**GUIDE_BODY, "id": str(uuid.uuid4())}, "id"),
        ({**GUIDE_BODY, "is_admin": True}, "is_admin"),
        ({**GUIDE_BODY, "max_actions_per_minute": 5}, "max_actions_per_minute"),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(client, admin, db, body, field):
    resp = client.post("/nhi/service-accounts", json=body, headers=admin)
    assert_problem(resp, 422, field=field)
    assert db.session.execute(db.select(Identity)).first() is None
    assert db.session.execute(db.select(AuditEvent)).first() is None


def test_malformed_json_is_400(client, admin, db):
    resp = client.post(
        "/nhi/service-accounts",
        data='{"name": "x",',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert_problem(resp, 400)
    assert db.session.execute(db.select(Identity)).first() is None


def test_duplicate_name_is_409_per_type_and_tenant(client, admin, auth):
    create(client, admin)
    resp = client.post("/nhi/service-accounts", json=GUIDE_BODY, headers=admin)
    assert_problem(resp, 409)
    # the same name is fine for an agent and in another tenant
    agent = {k: v for k, v in GUIDE_BODY.items() if k != "nhi_type"}
    assert client.post("/nhi/agents", json=agent, headers=admin).status_code == 201
    other = auth("admin", tid=uuid.uuid4())
    assert client.post("/nhi/service-accounts", json=GUIDE_BODY, headers=other).status_code == 201


def test_suspend_reactivate_transfer_delete(client, admin, db):
    sa_ = create(client, admin)
    url = f"/nhi/service-accounts/{sa_['id']}"
    resp = client.post(
        f"{url}/suspend", json={"reason": "Credential compromise suspected"}, headers=admin
    )
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "suspended"
    assert resp.get_json()["suspension_reason"] == "Credential compromise suspected"
    assert_problem(client.post(f"{url}/suspend", json={"reason": "again"}, headers=admin), 409)

    resp = client.post(
        f"{url}/reactivate",
        json={"reason": "Investigation complete, no compromise found"},
        headers=admin,
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "active"
    assert resp.get_json()["suspension_reason"] is None
    assert_problem(client.post(f"{url}/reactivate", json={"reason": "x"}, headers=admin), 409)

    resp = client.post(f"{url}/transfer", json={"new_owner_id": NEW_OWNER}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["owner_id"] == NEW_OWNER
    assert_problem(
        client.post(f"{url}/transfer", json={"new_owner_id": NEW_OWNER}, headers=admin), 409
    )
    assert str(stored(db, sa_["id"]).owner_id) == NEW_OWNER

    resp = client.delete(url, headers=admin)
    assert resp.status_code == 204 and resp.get_data() == b""
    assert_problem(client.get(url, headers=admin), 404)
    assert_problem(client.delete(url, headers=admin), 404)
    listed = client.get("/nhi/service-accounts", headers=admin).get_json()
    assert listed["total"] == 0
    # the audit trail of the deleted identity stays readable
    trail = client.get(f"/nhi/audit?nhi_id={sa_['id']}", headers=admin).get_json()
    assert [i["event_type"] for i in trail["items"]] == [
        "nhi.deleted",
        "nhi.ownership_transferred",
        "nhi.reactivated",
        "nhi.suspended",
        "nhi.created",
    ]
    # its name is free again
    assert client.post("/nhi/service-accounts", json=GUIDE_BODY, headers=admin).status_code == 201


def test_lifecycle_bodies_are_validated(client, admin, db):
    sa_ = create(client, admin)
    url = f"/nhi/service-accounts/{sa_['id']}"
    assert_problem(client.post(f"{url}/suspend", headers=admin), 422, field="reason")
    assert_problem(
        client.post(f"{url}/suspend", json={"reason": " "}, headers=admin), 422, field="reason"
    )
    assert_problem(
        client.post(f"{url}/transfer", json={"new_owner_id": "nope"}, headers=admin),
        422,
        field="new_owner_id",
    )
    assert stored(db, sa_["id"]).status == "active"


def test_expiry_is_evaluated_on_read(client, admin, db):
    soon = clock.isoformat(clock.now() + timedelta(hours=1))
    sa_ = create(client, admin, expires_at=soon)
    assert sa_["status"] == "active"
    clock.advance(timedelta(hours=2))
    url = f"/nhi/service-accounts/{sa_['id']}"
    assert client.get(url, headers=admin).get_json()["status"] == "expired"
    expired = client.get("/nhi/service-accounts?status=expired", headers=admin).get_json()
    assert expired["total"] == 1
    summary = client.get("/nhi/service-accounts/summary", headers=admin).get_json()
    assert summary["by_status"]["expired"] == 1 and summary["by_status"]["active"] == 0
    # expired may be suspended, and reactivation lands back in expired
    assert client.post(f"{url}/suspend", json={"reason": "r"}, headers=admin).status_code == 200
    resp = client.post(f"{url}/reactivate", json={"reason": "r"}, headers=admin)
    assert resp.get_json()["status"] == "expired"
    assert stored(db, sa_["id"]).status == "expired"


def test_unknown_and_malformed_ids(client, admin):
    assert_problem(client.get(f"/nhi/service-accounts/{uuid.uuid4()}", headers=admin), 404)
    assert_problem(client.get("/nhi/service-accounts/not-a-uuid", headers=admin), 404)
    assert_problem(
        client.post(
            f"/nhi/service-accounts/{uuid.uuid4()}/suspend", json={"reason": "x"}, headers=admin
        ),
        404,
    )


def test_another_tenants_ids_are_404_and_untouched(client, admin, auth, db):
    sa_ = create(client, admin)
    url = f"/nhi/service-accounts/{sa_['id']}"
    intruder = auth("admin", tid=uuid.uuid4())
    assert_problem(client.get(url, headers=intruder), 404)
    assert_problem(client.patch(url, json={"name": "pwned"}, headers=intruder), 404)
    assert_problem(client.post(f"{url}/suspend", json={"reason": "x"}, headers=intruder), 404)
    assert_problem(client.delete(url, headers=intruder), 404)
    assert client.get("/nhi/service-accounts", headers=intruder).get_json()["total"] == 0
    row = stored(db, sa_["id"])
    assert (row.name, row.status, row.deleted_at) == ("ci-pipeline-prod", "active", None)


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_non_admins_read_but_cannot_write(client, admin, auth, db, role):
    sa_ = create(client, admin)
    url = f"/nhi/service-accounts/{sa_['id']}"
    headers = auth(role)
    assert client.get(url, headers=headers).status_code == 200
    assert client.get("/nhi/service-accounts", headers=headers).status_code == 200
    assert_problem(
        client.post("/nhi/service-accounts", json={**GUIDE_BODY, "name": "n2"}, headers=headers),
        403,
    )
    assert_problem(client.patch(url, json={"name": "x"}, headers=headers), 403)
    assert_problem(client.post(f"{url}/suspend", json={"reason": "x"}, headers=headers), 403)
    assert_problem(client.delete(url, headers=headers), 403)
    assert stored(db, sa_["id"]).name == "ci-pipeline-prod"


def test_nhi_token_reads_only_its_own_record(client, admin, auth):
    mine = create(client, admin)
    other = create(client, admin, name="other")
    me = auth("service_account", sub=mine["id"])
    assert client.get(f"/nhi/service-accounts/{mine['id']}", headers=me).status_code == 200
    assert_problem(client.get(f"/nhi/service-accounts/{other['id']}", headers=me), 403)
    assert_problem(client.get("/nhi/service-accounts", headers=me), 403)
    assert_problem(
        client.post("/nhi/service-accounts", json={**GUIDE_BODY, "name": "z"}, headers=me), 403
    )
    who = client.get("/nhi/whoami", headers=me).get_json()
    assert who["sub"] == mine["id"] and who["nhi_type"] == "service_account"
    # suspension kills its tokens at once
    client.post(f"/nhi/service-accounts/{mine['id']}/suspend", json={"reason": "x"}, headers=admin)
    assert_problem(client.get("/nhi/whoami", headers=me), 401)


@pytest.mark.parametrize("qs", ["limit=0", "limit=101", "limit=abc", "offset=-1", "offset=x"])
def test_bad_pagination_is_422(client, admin, qs):
    body = assert_problem(client.get(f"/nhi/service-accounts?{qs}", headers=admin), 422)
    assert set(body["errors"]) & {"limit", "offset"}


@pytest.mark.parametrize("qs", ["status=gone", "risk_level=huge", "owner_id=nope"])
def test_bad_filters_are_422(client, admin, qs):
    assert_problem(client.get(f"/nhi/service-accounts?{qs}", headers=admin), 422)

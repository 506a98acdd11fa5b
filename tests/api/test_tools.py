"""Tools: the guide's examples, filters, JSON Schema checks, conflicts and tenancy."""

from __future__ import annotations

import uuid

import pytest

from nhi.models import AuditEvent, Tool, ToolCatalogVersion
from tests.authz_helpers import GUIDE_TOOL, make_tool
from tests.conftest import assert_problem


def stored_tool(db, tool_id: str) -> Tool | None:
    db.session.expire_all()
    return db.session.get(Tool, uuid.UUID(tool_id))


def catalog_version(db, tenant) -> int | None:
    db.session.expire_all()
    row = db.session.get(ToolCatalogVersion, tenant)
    return row.version if row else None


def test_register_tool_as_in_the_guide(client, admin, tenant, db):
    resp = client.post("/nhi/tools", json=GUIDE_TOOL, headers=admin)
    assert resp.status_code == 201
    body = resp.get_json()
    assert resp.headers["Location"].endswith(f"/nhi/tools/{body['id']}")
    for key, value in GUIDE_TOOL.items():
        assert body[key] == value
    assert body["created_at"].endswith("Z") and uuid.UUID(body["id"]).version == 4
    row = stored_tool(db, body["id"])
    assert row.tenant_id == tenant and row.parameters_schema == GUIDE_TOOL["parameters_schema"]
    assert catalog_version(db, tenant) == 1
    events = db.session.execute(db.select(AuditEvent)).scalars().all()
    assert [(e.event_type, e.resource) for e in events] == [("tool.created", "tool:sql-query")]


def test_list_and_filters_as_in_the_guide(client, admin):
    make_tool(client, admin)
    make_tool(
        client,
        admin,
        name="http-get",
        description="Fetch a URL",
        category="network",
        risk_level="low",
        requires_approval=False,
    )
    make_tool(
        client,
        admin,
        name="drop_table",
        description="Destructive DDL",
        category="database",
        risk_level="critical",
    )
    page = client.get("/nhi/tools?limit=20&offset=0", headers=admin).get_json()
    assert page["total"] == 3 and [t["name"] for t in page["items"]] == [
        "drop_table",
        "http-get",
        "sql-query",
    ]

    def names(query: str) -> list[str]:
        resp = client.get(f"/nhi/tools?{query}", headers=admin)
        assert resp.status_code == 200
        return [t["name"] for t in resp.get_json()["items"]]

    assert names("category=database&requires_approval=true") == ["drop_table", "sql-query"]
    assert names("requires_approval=false") == ["http-get"]
    assert names("risk_level=critical") == ["drop_table"]
    assert names("search=READ-ONLY") == ["sql-query"]
    assert names("search=_") == ["drop_table"]
    assert_problem(client.get("/nhi/tools?risk_level=extreme", headers=admin), 422)
    assert_problem(client.get("/nhi/tools?requires_approval=maybe", headers=admin), 422)


def test_update_and_delete_as_in_the_guide(client, admin, tenant, db):
    tool = make_tool(client, admin)
    resp = client.patch(
        f"/nhi/tools/{tool['id']}",
        json={"requires_approval": False, "risk_level": "low"},
        headers=admin,
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["requires_approval"] is False and body["risk_level"] == "low"
    assert body["parameters_schema"] == GUIDE_TOOL["parameters_schema"]
    row = stored_tool(db, tool["id"])
    assert (row.requires_approval, row.risk_level) == (False, "low")
    assert catalog_version(db, tenant) == 2
    put = client.put(f"/nhi/tools/{tool['id']}", json={"description": "x"}, headers=admin)
    assert put.status_code == 200 and put.get_json()["description"] == "x"

    assert client.delete(f"/nhi/tools/{tool['id']}", headers=admin).status_code == 204
    assert stored_tool(db, tool["id"]) is None
    assert catalog_version(db, tenant) == 4
    assert_problem(client.get(f"/nhi/tools/{tool['id']}", headers=admin), 404)
    assert_problem(client.delete(f"/nhi/tools/{tool['id']}", headers=admin), 404)
    kinds = [
        e.event_type
        for e in db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    ]
    assert kinds == ["tool.created", "tool.updated", "tool.updated", "tool.deleted"]


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"type": "objekt"}, "type"),
        ({"properties": {"q": {"type": 5}}}, "properties/q/type"),
        ({"required": "query"}, "required"),
        ({"minLength": -1}, "minLength"),
    ],
)
def test_invalid_json_schema_is_422_naming_the_problem(client, admin, db, schema, needle):
    resp = client.post(
        "/nhi/tools", json={**GUIDE_TOOL, "parameters_schema": schema}, headers=admin
    )
    body = assert_problem(resp, 422, field="parameters_schema")
    assert needle in body["errors"]["parameters_schema"][0]
    assert db.session.execute(db.select(Tool)).first() is None
    assert db.session.execute(db.select(AuditEvent)).first() is None


def test_invalid_json_schema_on_update_keeps_the_tool(client, admin, db):
    tool = make_tool(client, admin)
    resp = client.patch(
        f"/nhi/tools/{tool['id']}", json={"parameters_schema": {"type": 1}}, headers=admin
    )
    assert_problem(resp, 422, field="parameters_schema")
    assert stored_tool(db, tool["id"]).parameters_schema == GUIDE_TOOL["parameters_schema"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "has space"},
        {"name": "star*"},
        {"name": "x", "risk_level": "extreme"},
        {"name": "x", "parameters_schema": "not an object"},
        {"name": "x", "requires_approval": "sometimes"},
        {"name": "x", "owner": "me"},
    ],
)
def test_bad_tool_input_is_422(client, admin, db, body):
    assert_problem(client.post("/nhi/tools", json=body, headers=admin), 422)
    assert db.session.execute(db.select(Tool)).first() is None


def test_duplicate_names_conflict_per_tenant(client, admin, auth):
    tool = make_tool(client, admin)
    assert_problem(client.post("/nhi/tools", json=GUIDE_TOOL, headers=admin), 409, field="name")
    other = make_tool(client, admin, name="other")
    resp = client.patch(f"/nhi/tools/{other['id']}", json={"name": "sql-query"}, headers=admin)
    assert_problem(resp, 409)
    # another tenant may use the same name, and cannot see this tenant's tool
    stranger = auth("admin", tid=uuid.uuid4())
    assert client.post("/nhi/tools", json=GUIDE_TOOL, headers=stranger).status_code == 201
    assert_problem(client.get(f"/nhi/tools/{tool['id']}", headers=stranger), 404)
    assert_problem(client.patch(f"/nhi/tools/{tool['id']}", json={}, headers=stranger), 404)
    assert_problem(client.delete(f"/nhi/tools/{tool['id']}", headers=stranger), 404)


def test_roles(client, admin, auth, db):
    tool = make_tool(client, admin)
    reviewer = auth("reviewer")
    assert client.get("/nhi/tools", headers=reviewer).status_code == 200
    assert client.get(f"/nhi/tools/{tool['id']}", headers=reviewer).status_code == 200
    assert_problem(
        client.post("/nhi/tools", json={**GUIDE_TOOL, "name": "y"}, headers=reviewer), 403
    )
    assert_problem(client.delete(f"/nhi/tools/{tool['id']}", headers=reviewer), 403)
    agent = client.post(
        "/nhi/agents", json={"name": "a", "owner_id": str(uuid.uuid4())}, headers=admin
    ).get_json()
    assert_problem(client.get("/nhi/tools", headers=auth("agent", sub=agent["id"])), 403)
    assert stored_tool(db, tool["id"]) is not None


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/missing"},
        {"$ref": "http://example.com/x.json"},
        {"$ref": "urn:nope"},
        {"type": "object", "properties": {"a": {"$ref": "#/definitions/none"}}},
        {"$schema": 123},
    ],
)
def test_schemas_with_unresolvable_references_are_422(client, admin, db, schema):
    from nhi.models.tools import Tool

    resp = client.post(
        "/nhi/tools", json={"name": "r1", "parameters_schema": schema}, headers=admin
    )
    assert_problem(resp, 422, field="parameters_schema")
    assert db.session.execute(db.select(Tool)).first() is None


def test_local_references_are_fine(client, admin):
    schema = {
        "$defs": {"q": {"type": "string"}},
        "type": "object",
        "properties": {"query": {"$ref": "#/$defs/q"}},
    }
    resp = client.post(
        "/nhi/tools", json={"name": "r2", "parameters_schema": schema}, headers=admin
    )
    assert resp.status_code == 201

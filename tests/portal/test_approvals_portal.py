"""The approvals queue and decision forms through the Flask test client."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from nhi import clock
from nhi.models.approvals import Approval
from tests.authz_helpers import decide, grant, make_agent, make_tool
from tests.portal.conftest import csrf_of

PARAMS = {"query": "SELECT * FROM sales", "database": "analytics"}
HX = {"HX-Request": "true"}


@pytest.fixture
def pending(client, admin, auth) -> dict[str, Any]:
    agent = make_agent(client, admin, name="data-analyst-bot")
    make_tool(client, admin)
    grant(
        client,
        admin,
        agent["id"],
        resource="tool:sql-query",
        action="invoke",
        conditions={"max_rows": 5000},
    )
    token = auth("agent", sub=agent["id"])
    body = decide(
        client, token, agent["id"], tool="sql-query", parameters=PARAMS, context={"rows": 250}
    )
    return {"agent": agent, "token": token, "id": body["approval_id"]}


def open_another(client, pending, query: str) -> str:
    body = decide(
        client,
        pending["token"],
        pending["agent"]["id"],
        tool="sql-query",
        parameters={**PARAMS, "query": query},
    )
    return body["approval_id"]


def post(client, url: str, data: dict[str, str]) -> Any:
    return client.post(url, data=data, headers={**HX, "X-CSRF-TOKEN": csrf_of(client)})


def stored(db, approval_id: str) -> Approval:
    db.session.expire_all()
    return db.session.get(Approval, uuid.UUID(approval_id))


def test_portal_home_goes_to_the_queue(signed_in):
    client = signed_in("reviewer")
    assert client.get("/portal/").headers["Location"] == "/portal/approvals"


def test_queue_shows_what_a_reviewer_needs(signed_in, pending):
    client = signed_in("reviewer")
    html = client.get("/portal/approvals").get_data(as_text=True)
    assert "data-analyst-bot" in html and "sql-query" in html
    assert '  "query": "SELECT * FROM sales"' in html  # pretty-printed
    assert '"rows": 250' in html
    assert "medium risk" in html  # agent and tool risk
    assert "expires in" in html and "waiting" in html
    assert f'id="approval-{pending["id"]}"' in html
    count = client.get("/portal/approvals/count", headers=HX).get_data(as_text=True)
    assert count.strip().startswith("1")


def test_parameters_cannot_inject_markup(signed_in, pending, client):
    open_another(client, pending, "<script>alert(1)</script>")
    html = signed_in("reviewer").get("/portal/approvals").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "\\u003cscript\\u003e" in html


def test_approve_with_conditions_removes_the_card(signed_in, pending, db):
    client = signed_in("reviewer")
    resp = post(
        client,
        f"/portal/approvals/{pending['id']}/approve",
        {"reason": "fine", "max_rows": "1000", "expires_in_minutes": "30"},
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Approved by you" in html
    assert 'hx-swap-oob="innerHTML"' in html and "<article" not in html
    assert resp.headers["HX-Trigger"] == "approvals-changed"
    row = stored(db, pending["id"])
    assert row.status == "approved"
    assert row.conditions == {"max_rows": 1000, "expires_in_minutes": 30}
    assert "data-analyst-bot wants" not in client.get("/portal/approvals").get_data(as_text=True)


@pytest.mark.parametrize(
    ("verb", "data", "message"),
    [
        ("approve", {"max_rows": "9999"}, "must be at most 5000"),
        ("approve", {"max_rows": "-3"}, "0 or more"),
        ("approve", {"max_rows": "lots"}, "Not a valid integer"),
        ("approve", {"expires_in_minutes": "2000"}, "between 1 and 1440"),
        ("deny", {"reason": "  "}, "must be 1 to 2000 characters"),
    ],
)
def test_invalid_decisions_re_render_the_form_with_422(signed_in, pending, db, verb, data, message):
    client = signed_in("reviewer")
    resp = post(client, f"/portal/approvals/{pending['id']}/{verb}", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert message in html and 'aria-invalid="true"' in html
    assert f'id="approval-{pending["id"]}"' in html and "<html" not in html
    assert stored(db, pending["id"]).status == "pending"


def test_decided_meanwhile_is_shown_not_swallowed(signed_in, pending, client, admin, db):
    reviewer = signed_in("reviewer")
    assert (
        client.post(
            f"/nhi/approvals/{pending['id']}/deny", json={"reason": "too broad"}, headers=admin
        ).status_code
        == 200
    )
    resp = post(reviewer, f"/portal/approvals/{pending['id']}/approve", {})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "already" in html and "denied" in html and "too broad" in html
    assert stored(db, pending["id"]).status == "denied"


def test_updates_prepend_new_requests_and_mark_decided_ones(signed_in, pending, client, admin):
    reviewer = signed_in("reviewer")
    unchanged = reviewer.get(f"/portal/approvals/updates?shown={pending['id']}", headers=HX)
    assert unchanged.status_code == 204
    newer = open_another(client, pending, "SELECT 2")
    client.post(f"/nhi/approvals/{pending['id']}/approve", headers=admin)
    resp = reviewer.get(f"/portal/approvals/updates?shown={pending['id']}", headers=HX)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert f'id="approval-{newer}"' in html
    assert f'id="approval-{pending["id"]}" hx-swap-oob="outerHTML"' in html
    assert "already" in html and "approved" in html
    assert reviewer.get("/portal/approvals/updates?shown=nope", headers=HX).status_code == 400


def test_requester_cannot_decide_in_the_portal_either(signed_in, auth, client, pending, db):
    from nhi.models import User

    portal = signed_in("admin")
    me = db.session.execute(db.select(User)).scalar_one()
    mine = decide(
        client,
        auth("admin", sub=me.id),
        pending["agent"]["id"],
        tool="sql-query",
        parameters={**PARAMS, "query": "mine"},
    )
    assert stored(db, mine["approval_id"]).requested_by == str(me.id)
    html = portal.get("/portal/approvals").get_data(as_text=True)
    assert "You asked for this action yourself" in html
    resp = post(portal, f"/portal/approvals/{mine['approval_id']}/approve", {})
    assert resp.status_code == 403
    assert stored(db, mine["approval_id"]).status == "pending"


def test_csrf_is_required_for_decisions(signed_in, pending, db):
    client = signed_in("reviewer")
    resp = client.post(f"/portal/approvals/{pending['id']}/approve", data={}, headers=HX)
    assert resp.status_code == 403
    assert stored(db, pending["id"]).status == "pending"


def test_other_tenants_requests_are_invisible(signed_in, pending, db):
    stranger = signed_in("admin", tid=uuid.uuid4())
    assert "data-analyst-bot" not in stranger.get("/portal/approvals").get_data(as_text=True)
    resp = post(stranger, f"/portal/approvals/{pending['id']}/approve", {})
    assert resp.status_code == 404
    assert stored(db, pending["id"]).status == "pending"


def test_history_filters_and_pages(signed_in, pending, client, admin):
    reviewer = signed_in("reviewer")
    ids = [pending["id"]] + [open_another(client, pending, f"SELECT {i}") for i in range(3)]
    client.post(f"/nhi/approvals/{ids[0]}/deny", json={"reason": "no way"}, headers=admin)
    client.post(
        f"/nhi/approvals/{ids[1]}/approve", json={"conditions": {"max_rows": 10}}, headers=admin
    )
    clock.advance(timedelta(hours=2))  # the other two expire
    html = reviewer.get("/portal/approvals/history").get_data(as_text=True)
    assert "4 decided or expired requests" in html and "no way" in html
    denied = reviewer.get("/portal/approvals/history?status=denied", headers=HX)
    text = denied.get_data(as_text=True)
    assert "1 decided or expired request" in text and "<html" not in text
    paged = reviewer.get("/portal/approvals/history?limit=2").get_data(as_text=True)
    assert "older →" in paged
    bad = reviewer.get("/portal/approvals/history?status=nope")
    assert bad.status_code == 422


def test_portal_errors_are_html_pages(signed_in, pending):
    stranger = signed_in("admin", tid=uuid.uuid4())
    resp = post(stranger, f"/portal/approvals/{pending['id']}/deny", {"reason": ""})
    assert resp.status_code == 404 and resp.mimetype == "text/html"


def test_nhi_tokens_cannot_use_the_portal(app, client, pending, tenant):
    from nhi.tokens import issue_token

    with app.app_context():
        token, _ = issue_token(pending["agent"]["id"], tenant, ["agent", "admin"])
    client.set_cookie("access_token_cookie", token, path="/portal")
    resp = client.get("/portal/approvals")
    assert resp.status_code == 403

"""A reviewer works the approvals queue in a real browser while an agent waits on the API."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from nhi.services import users
from tests.authz_helpers import grant, make_agent, make_tool
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e
PARAMS = {"query": "SELECT region, sum(total) FROM sales GROUP BY 1", "database": "analytics"}


def _authorize(url: str, agent: dict[str, Any], token: dict[str, str], **params: Any) -> Any:
    resp = requests.post(
        f"{url}/nhi/agents/{agent['id']}/authorize",
        headers=token,
        timeout=10,
        json={"tool": "sql-query", "parameters": {**PARAMS, **params}, "context": {"rows": 800}},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_reviewer_approves_and_denies_in_the_queue(
    app, live_server, page, client, admin, auth, tenant
):
    with app.app_context():
        users.create_user(
            email="rev@example.com", password="rev-pass-1234", roles=["reviewer"], tenant_id=tenant
        )
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
    service = client.post(
        "/nhi/service-accounts",
        headers=admin,
        json={"name": "ci-pipeline-prod", "owner_id": agent["owner_id"]},
    )
    assert service.status_code == 201

    page.goto(f"{live_server}/portal/login")
    page.get_by_label("E-mail").fill("rev@example.com")
    page.get_by_label("Password").fill("rev-pass-1234")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal/approvals")
    assert page.get_by_text("No pending requests").is_visible()

    # the agent asks; the card appears without a reload
    first = _authorize(live_server, agent, token)
    assert first["requires_approval"] is True
    card = page.locator(f"#approval-{first['approval_id']}")
    card.wait_for(state="visible", timeout=15_000)
    assert "data-analyst-bot" in card.inner_text()
    assert '"database": "analytics"' in card.locator("pre").first.inner_text()
    page.locator("#pending-count").filter(has_text="1").wait_for(timeout=15_000)
    screenshot(page, "portal-approvals-queue.png")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: still usable
    assert card.get_by_role("button", name="Approve").is_visible()
    screenshot(page, "portal-approvals-narrow.png")
    page.set_viewport_size({"width": 1280, "height": 800})

    # validation errors re-render in place (422 swap)
    card.get_by_label("Max rows").fill("999999")
    card.get_by_role("button", name="Approve").click()
    card.get_by_text("must be at most 5000").wait_for()
    assert page.url.endswith("/portal/approvals")

    card.get_by_label("Max rows").fill("1000")
    card.get_by_label("Usable for (minutes)").fill("30")
    card.get_by_label("Reason (optional)").fill("Within the quarterly scope")
    screenshot(page, "portal-approval-decision-form.png")
    card.get_by_role("button", name="Approve").click()
    page.get_by_text("Approved by you").wait_for()
    card.wait_for(state="detached")

    status = requests.get(
        f"{live_server}/nhi/approvals/{first['approval_id']}/status", headers=token, timeout=10
    ).json()
    assert status["status"] == "approved"
    assert status["conditions"] == {"max_rows": 1000, "expires_in_minutes": 30}
    allowed = _authorize(live_server, agent, token)
    assert allowed["authorized"] is True and allowed["conditions"]["max_rows"] == 1000

    # deny another one, with the reason the agent then sees
    second = _authorize(live_server, agent, token, query="DELETE FROM sales")
    card = page.locator(f"#approval-{second['approval_id']}")
    card.wait_for(state="visible", timeout=15_000)
    card.get_by_role("button", name="Deny").click()  # empty reason: refused in place
    assert card.is_visible()
    card.get_by_label("Reason for denying (required)").fill("Destructive query, not approved")
    card.get_by_role("button", name="Deny").click()
    page.get_by_text("Denied by you").wait_for()
    status = requests.get(
        f"{live_server}/nhi/approvals/{second['approval_id']}/status", headers=token, timeout=10
    ).json()
    assert status == {**status, "status": "denied", "reason": "Destructive query, not approved"}

    # history shows both decisions
    page.get_by_role("link", name="History").click()
    page.wait_for_url("**/portal/approvals/history")
    assert page.get_by_text("Destructive query, not approved").is_visible()
    assert page.get_by_text("Within the quarterly scope").is_visible()

    # an admin-only action is refused to a reviewer, in the page and at the server
    page.get_by_role("link", name="Inventory").click()
    page.wait_for_url("**/portal/identities")
    assert page.get_by_role("button", name="Suspend").count() == 0
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrf_access_token")
    refused = page.request.post(
        f"{live_server}/portal/identities/{service.get_json()['id']}/suspend",
        form={"reason": "try"},
        headers={"X-CSRF-TOKEN": csrf, "HX-Request": "true"},
    )
    assert refused.status == 403
    assert (
        client.get(f"/nhi/service-accounts/{service.get_json()['id']}", headers=admin).get_json()[
            "status"
        ]
        == "active"
    )

"""Sign-in and navigation in a real browser."""

from __future__ import annotations

import uuid

import pytest

from nhi.services import users
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e


def test_reviewer_signs_in_and_searches_the_inventory(
    app, live_server, page, client, admin, tenant
):
    with app.app_context():
        users.create_user(
            email="rita@example.com", password="rita-pass-123", roles=["reviewer"], tenant_id=tenant
        )
    for name in ("ci-pipeline-prod", "billing-sync"):
        body = {"name": name, "owner_id": str(uuid.uuid4())}
        assert client.post("/nhi/service-accounts", json=body, headers=admin).status_code == 201

    page.goto(f"{live_server}/portal/identities")
    assert "/portal/login" in page.url
    page.get_by_label("E-mail").fill("rita@example.com")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Unknown e-mail")

    page.get_by_label("Password").fill("rita-pass-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal/identities")
    assert page.locator("table tbody tr").count() == 2

    page.get_by_label("Search").fill("billing")
    page.locator("table tbody tr", has_text="ci-pipeline-prod").wait_for(state="detached")
    assert page.locator("table tbody tr").count() == 1
    assert "search=billing" in page.url  # hx-push-url keeps the filter bookmarkable
    screenshot(page, "portal-inventory.png")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/portal/login")
    page.goto(f"{live_server}/portal/identities")
    assert "/portal/login" in page.url

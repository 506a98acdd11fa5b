"""Portal sign-in, sessions, CSRF and role checks (Flask test client)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token

from nhi.models import Identity
from tests.portal.conftest import PASSWORD, csrf_of

PAGES = ["/portal/identities"]


@pytest.mark.parametrize("path", ["/portal/", "/portal", *PAGES])
def test_anonymous_requests_go_to_sign_in(client, path):
    resp = client.get(path)
    if path == "/portal":  # Flask's canonical-slash redirect first
        resp = client.get(resp.headers["Location"])
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/portal/login")


def test_sign_in_page_uses_the_vendored_htmx(client):
    resp = client.get("/portal/login")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'src="/static/vendor/htmx-2.0.8.min.js"' in html
    assert client.get("/static/vendor/htmx-2.0.8.min.js").status_code == 200
    assert 'for="email"' in html and 'for="password"' in html


def test_sign_in_sets_a_hardened_cookie_and_follows_next(app, make_user):
    client = app.test_client()
    email = make_user("reviewer")
    resp = client.post(
        "/portal/login",
        data={"email": email, "password": PASSWORD, "next": "/portal/identities?search=x"},
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/portal/identities?search=x"
    cookies = resp.headers.getlist("Set-Cookie")
    access = next(c for c in cookies if c.startswith("access_token_cookie="))
    assert "HttpOnly" in access and "SameSite=Lax" in access and "Path=/portal" in access
    assert client.get("/portal/identities").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/nhi/whoami"])
def test_sign_in_never_redirects_off_the_portal(app, make_user, target):
    client = app.test_client()
    email = make_user("admin")
    resp = client.post("/portal/login", data={"email": email, "password": PASSWORD, "next": target})
    assert resp.headers["Location"] == "/portal/"


def test_bad_sign_in_re_renders_the_form(app, make_user):
    client = app.test_client()
    email = make_user("reviewer")
    resp = client.post("/portal/login", data={"email": email, "password": "wrong"})
    assert resp.status_code == 401 and "Unknown e-mail or wrong password" in resp.get_data(
        as_text=True
    )
    assert client.get_cookie("access_token_cookie", path="/portal") is None
    resp = client.post("/portal/login", data={"email": "", "password": ""})
    assert resp.status_code == 422 and 'aria-invalid="true"' in resp.get_data(as_text=True)


def test_only_admins_and_reviewers_may_sign_in(app, make_user):
    client = app.test_client()
    resp = client.post("/portal/login", data={"email": make_user("viewer"), "password": PASSWORD})
    assert resp.status_code == 403
    assert client.get_cookie("access_token_cookie", path="/portal") is None


def test_sign_out_needs_the_csrf_token(signed_in):
    client = signed_in("reviewer")
    resp = client.post("/portal/logout")
    assert resp.status_code == 403 and "CSRF" in resp.get_data(as_text=True)
    assert client.get("/portal/identities").status_code == 200  # still signed in
    resp = client.post("/portal/logout", data={"csrf_token": csrf_of(client)})
    assert resp.status_code == 303 and resp.headers["Location"] == "/portal/login"
    assert client.get("/portal/identities").status_code == 302


def test_expired_session_in_htmx_request_redirects_instead_of_swapping(app, signed_in, tenant):
    client = signed_in("reviewer")
    assert client.get("/portal/identities", headers={"HX-Request": "true"}).status_code == 200
    with app.app_context():
        expired = create_access_token(
            identity=str(uuid.uuid4()),
            additional_claims={"tid": str(tenant), "roles": ["reviewer"]},
            expires_delta=timedelta(minutes=-5),
        )
    client.set_cookie("access_token_cookie", expired, path="/portal")
    resp = client.get("/portal/identities", headers={"HX-Request": "true"})
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"] == "/portal/login?next=/portal/identities"
    # a full page load goes to sign-in with a 302
    client.set_cookie("access_token_cookie", expired, path="/portal")
    assert client.get("/portal/identities").status_code == 302


def test_portal_cookie_does_not_authenticate_the_api(signed_in):
    client = signed_in("admin")
    # The cookie is scoped to /portal, and the API reads bearer headers only.
    assert client.get("/nhi/whoami").status_code == 401


def test_inventory_page_and_fragment(signed_in, admin, client, db, tenant):
    body = {"name": "inventory-svc", "owner_id": str(uuid.uuid4()), "description": "shown"}
    assert client.post("/nhi/service-accounts", json=body, headers=admin).status_code == 201
    reviewer = signed_in("reviewer")
    page = reviewer.get("/portal/identities")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "inventory-svc" in html
    assert page.headers["Vary"] == "HX-Request"
    fragment = reviewer.get(
        "/portal/identities?search=nothing-matches", headers={"HX-Request": "true"}
    )
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and "No identities match." in text
    # other tenants' identities never show
    other = signed_in("reviewer", tid=uuid.uuid4())
    assert "inventory-svc" not in other.get("/portal/identities").get_data(as_text=True)
    assert db.session.execute(db.select(Identity)).scalar_one().name == "inventory-svc"


def test_only_admins_suspend_from_the_inventory(signed_in, client, admin, db):
    body = {"name": "to-suspend", "owner_id": str(uuid.uuid4())}
    sa_id = client.post("/nhi/service-accounts", json=body, headers=admin).get_json()["id"]
    url = f"/portal/identities/{sa_id}/suspend"
    reviewer = signed_in("reviewer")
    assert "Suspend</button>" not in reviewer.get("/portal/identities").get_data(as_text=True)
    resp = reviewer.post(
        url, data={"reason": "x"}, headers={"HX-Request": "true", "X-CSRF-TOKEN": csrf_of(reviewer)}
    )
    assert resp.status_code == 403
    assert db.session.get(Identity, uuid.UUID(sa_id)).status == "active"

    boss = signed_in("admin")
    headers = {"HX-Request": "true", "X-CSRF-TOKEN": csrf_of(boss)}
    assert boss.post(url, data={"reason": ""}, headers=headers).status_code == 422
    resp = boss.post(url, data={"reason": "rotating keys"}, headers=headers)
    assert resp.status_code == 200 and "suspended" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Identity, uuid.UUID(sa_id)).suspension_reason == "rotating keys"
    again = boss.post(url, data={"reason": "again"}, headers=headers)
    assert again.status_code == 409

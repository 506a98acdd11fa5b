"""Portal fixtures: local users and signed-in test clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from nhi.services import users

PASSWORD = "portal-pass-123"


@pytest.fixture
def make_user(app: Flask, tenant: uuid.UUID) -> Callable[..., str]:
    def make(role: str, tid: uuid.UUID | None = None) -> str:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        with app.app_context():
            users.create_user(email=email, password=PASSWORD, roles=[role], tenant_id=tid or tenant)
        return email

    return make


def csrf_of(client: FlaskClient) -> str:
    cookie = client.get_cookie("csrf_access_token", path="/portal")
    assert cookie is not None
    return cookie.value


@pytest.fixture
def signed_in(app: Flask, make_user: Callable[..., str]) -> Callable[..., FlaskClient]:
    def sign_in(role: str = "reviewer", **kw: Any) -> FlaskClient:
        client = app.test_client()
        email = make_user(role, **kw)
        resp = client.post("/portal/login", data={"email": email, "password": PASSWORD})
        assert resp.status_code == 303, resp.get_data(as_text=True)
        return client

    return sign_in

"""Cross-cutting contract: authentication, problem+json everywhere, OpenAPI coverage."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask

from nhi import create_app
from nhi.config import ConfigError
from tests.conftest import JWT_SECRET, assert_problem, base_config

PUBLIC = {"/healthz", "/readyz", "/nhi/openapi.json", "/nhi/docs", "/nhi/auth/login"}


def _routes(app: Flask) -> list[tuple[str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/nhi"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = re.sub(r"<uuid:[^>]+>", str(uuid.uuid4()), rule.rule)
            path = re.sub(r"<[^>]+>", "x", path)
            out.append((method, path if rule.rule not in PUBLIC else rule.rule))
    return out


def _make_token(claims: dict[str, Any], key: str = JWT_SECRET, alg: str = "HS256") -> str:
    return pyjwt.encode(claims, key, algorithm=alg)


def _claims(tenant: uuid.UUID, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": str(uuid.uuid4()),
        "tid": str(tenant),
        "roles": ["admin"],
        "iat": now,
        "exp": now + 300,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_every_protected_route_requires_a_token(app, client):
    routes = _routes(app)
    assert len(routes) > 20
    for method, path in routes:
        if path in PUBLIC:
            continue
        resp = client.open(path, method=method, json={})
        assert_problem(resp, 401)
        assert "Bearer" in resp.headers.get("WWW-Authenticate", "")


def test_every_nhi_route_is_in_the_openapi_spec(app, client):
    spec = client.get("/nhi/openapi.json")
    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    documented = {
        (m.upper(), re.sub(r"\{[^}]+\}", "{}", p))
        for p, ops in paths.items()
        for m in ops
        if m in ("get", "post", "put", "patch", "delete")
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/nhi") or rule.endpoint.startswith("api-docs."):
            continue
        templ = re.sub(r"<(?:[^:>]+:)?[^>]+>", "{}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (method, templ) in documented, (method, rule.rule)
    assert spec.get_json()["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_whoami_echoes_the_caller(client, auth, tenant):
    sub = uuid.uuid4()
    body = client.get("/nhi/whoami", headers=auth("reviewer", sub=sub)).get_json()
    assert body == {"sub": str(sub), "tid": str(tenant), "roles": ["reviewer"]}


def test_unknown_tenant_is_a_valid_empty_tenant(client, auth):
    headers = auth("admin", tid=uuid.uuid4())
    body = client.get("/nhi/identities", headers=headers).get_json()
    assert body == {"items": [], "total": 0, "limit": 20, "offset": 0}


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "wrong_key",
        "alg_none",
        "no_exp",
        "bad_tid",
        "no_tid",
        "roles_not_list",
        "sub_not_uuid",
        "garbage",
        "not_bearer",
    ],
)
def test_bad_tokens_are_401(client, tenant, case):
    claims = _claims(tenant)
    if case == "expired":
        token = _make_token(_claims(tenant, exp=int(time.time()) - 3600))
    elif case == "wrong_key":
        token = _make_token(claims, key="another-secret-key-0123456789-abcdefghij")
    elif case == "alg_none":
        header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token = f"{header}.{payload}."
    elif case == "no_exp":
        token = _make_token(_claims(tenant, exp=None))
    elif case == "bad_tid":
        token = _make_token(_claims(tenant, tid="acme"))
    elif case == "no_tid":
        token = _make_token(_claims(tenant, tid=None))
    elif case == "roles_not_list":
        token = _make_token(_claims(tenant, roles="admin"))
    elif case == "sub_not_uuid":
        token = _make_token(_claims(tenant, sub="root"))
    else:
        token = "not.a.jwt"
    scheme = "Basic" if case == "not_bearer" else "Bearer"
    resp = client.get("/nhi/identities", headers={"Authorization": f"{scheme} {token}"})
    assert_problem(resp, 401)


def test_issuer_and_audience_are_checked_when_configured(database_uri, tenant):
    app = create_app(
        {**base_config(database_uri), "JWT_ISSUER": "https://idp.example", "JWT_AUDIENCE": "nhi"}
    )
    client = app.test_client()
    good = _make_token(_claims(tenant, iss="https://idp.example", aud="nhi"))
    assert client.get("/nhi/whoami", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    for claims in (
        _claims(tenant, iss="https://evil", aud="nhi"),
        _claims(tenant, iss="https://idp.example", aud="other"),
        _claims(tenant),
    ):
        resp = client.get("/nhi/whoami", headers={"Authorization": f"Bearer {_make_token(claims)}"})
        assert_problem(resp, 401)


def test_asymmetric_keys_can_be_configured(database_uri, tenant):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    app = create_app(
        {**base_config(database_uri), "JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY": public_pem}
    )
    client = app.test_client()
    good = pyjwt.encode(_claims(tenant), private_pem, algorithm="ES256")
    assert client.get("/nhi/whoami", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    # an HS256 token signed with the public key as secret (algorithm confusion) is refused
    forged = _make_token(_claims(tenant), key="x" * 40)
    assert_problem(client.get("/nhi/whoami", headers={"Authorization": f"Bearer {forged}"}), 401)


def test_production_refuses_the_dev_secret(database_uri):
    with pytest.raises(ConfigError):
        create_app({"SQLALCHEMY_DATABASE_URI": database_uri, "ENV": "production"})
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_uri, "ENV": "production", "JWT_SECRET_KEY": "s" * 40}
    )
    assert app.config["JWT_SECRET_KEY"] == "s" * 40


def test_routing_errors_are_problems(client, admin):
    assert_problem(client.get("/nhi/nothing-here", headers=admin), 404)
    assert_problem(client.get("/nhi/nothing-here"), 404)
    resp = client.delete("/nhi/service-accounts", headers=admin)
    assert_problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


def test_unexpected_errors_are_500_problems_without_trace(database_uri, admin, monkeypatch):
    app = create_app({**base_config(database_uri), "TESTING": False})
    from nhi.services import identities

    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(identities, "summary", boom)
    resp = app.test_client().get("/nhi/service-accounts/summary", headers=admin)
    body = assert_problem(resp, 500)
    assert "secret internals" not in json.dumps(body)


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok"}


def test_readiness_reports_unreachable_redis(database_uri):
    app = create_app({**base_config(database_uri), "REDIS_URL": "redis://127.0.0.1:1/0"})
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["redis"] == "unavailable"


def test_docs_page_is_public_and_uses_vendored_assets(client):
    resp = client.get("/nhi/docs")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert client.get("/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js").status_code == 200


MUTATIONS = {"POST", "PUT", "PATCH", "DELETE"}


def test_other_humans_cannot_mutate_anything(app, client, auth):
    """The role table: a human without admin/reviewer roles only reads."""
    viewer = auth("viewer")
    checked = 0
    for method, path in _routes(app):
        if method not in MUTATIONS or path in PUBLIC:
            continue
        assert_problem(client.open(path, method=method, json={}, headers=viewer), 403)
        checked += 1
    assert checked >= 10


def test_unknown_ids_are_404_on_every_read_route(app, client, admin):
    """No existence oracle: an id that is not in the caller's tenant reads as 404."""
    checked = 0
    for method, path in _routes(app):
        if method == "GET" and re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", path):
            assert_problem(client.get(path, headers=admin), 404)
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ('{"name": "x", "owner_id": ', "not valid JSON"),
        ('{"name": NaN, "owner_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479"}', "NaN"),
        ('{"name": "x", "description": Infinity}', "Infinity"),
        ('{"name": "a\\u0000b", "owner_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479"}', "NUL"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b'{"name": "\xff"}', "UTF-8"),
    ],
)
def test_hostile_json_is_400_and_writes_nothing(client, admin, db, raw, detail):
    from nhi.models import Identity

    resp = client.post(
        "/nhi/service-accounts", data=raw, headers={**admin, "Content-Type": "application/json"}
    )
    body = assert_problem(resp, 400)
    assert detail in body["detail"]
    assert db.session.execute(db.select(Identity)).first() is None


def test_nul_in_query_strings_is_400(client, admin):
    assert_problem(client.get("/nhi/service-accounts?search=a%00b", headers=admin), 400)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_out_of_range_datetimes_are_422(client, admin, when):
    body = {"name": "x", "owner_id": str(uuid.uuid4()), "expires_at": when}
    assert_problem(
        client.post("/nhi/service-accounts", json=body, headers=admin), 422, field="expires_at"
    )
    assert_problem(
        client.get(f"/nhi/audit?since={when.replace('+', '%2B')}", headers=admin),
        422,
        field="since",
    )

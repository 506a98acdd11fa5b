"""The pure decision function: unit cases and property tests against a simple reference model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nhi.services.decision import AuthzRequest, evaluate, merge_approval_conditions
from nhi.services.policy import (
    compile_policy,
    compile_tool,
    parse_resource_pattern,
    parse_time_window,
    validate_conditions,
)

NOW = datetime(2031, 1, 15, 12, 0, tzinfo=UTC)


def row(resource: str, action: str = "read", effect: str = "allow", **kw: Any) -> dict[str, Any]:
    return {
        "id": kw.pop("id", uuid.uuid4()),
        "resource": resource,
        "action": action,
        "effect": effect,
        "conditions": kw.pop("conditions", {}),
        "expires_at": kw.pop("expires_at", None),
    }


def req(resource: str = "db:a", action: str = "read", **kw: Any) -> AuthzRequest:
    kind, _, name = resource.partition(":")
    return AuthzRequest(resource, kind, name, action, **kw)


def test_patterns():
    assert parse_resource_pattern("*") == (None, None)
    assert parse_resource_pattern("database:*") == ("database", None)
    assert parse_resource_pattern("database:analytics") == ("database", "analytics")
    assert parse_resource_pattern("api:https://x/y") == ("api", "https://x/y")
    for bad in ("", "database", "database:", ":x", "a b:c", "db:a*", "*:*", "db:a b"):
        with pytest.raises(ValueError):
            parse_resource_pattern(bad)


def test_time_window_parsing_and_wrap():
    window = parse_time_window("22:00-06:00", None)
    assert window.is_open(NOW.replace(hour=23)) and window.is_open(NOW.replace(hour=0))
    assert not window.is_open(NOW.replace(hour=6)) and not window.is_open(NOW.replace(hour=21))
    paris = parse_time_window("12:00-13:00", "Europe/Paris")
    assert paris.is_open(NOW.replace(hour=11)) and not paris.is_open(NOW)
    for bad in ("9-17", "24:00-01:00", "10:00-10:00", "aa:bb-cc:dd", "10:00-24:01"):
        with pytest.raises(ValueError):
            parse_time_window(bad, None)
    with pytest.raises(ValueError):
        parse_time_window("10:00-11:00", "Nowhere/Land")


def test_conditions_validation():
    assert validate_conditions({"time_window": "09:00-17:00", "max_rows": 0}, "allow") == {}
    errors = validate_conditions({"colour": "red", "max_rows": -1}, "allow")
    assert set(errors) == {"colour", "max_rows"}
    assert "max_rows" in validate_conditions({"max_rows": 3}, "deny")


def test_rule_order_unit_cases():
    allow = row("db:*", conditions={"max_rows": 5})
    policy = compile_policy([allow])
    assert evaluate("suspended", policy, None, req(), NOW).rule == "agent_not_active"
    assert evaluate("active", policy, None, req("file:a"), NOW).rule == "no_permission"
    assert evaluate("active", policy, None, req(context={"rows": 6}), NOW).rule == "max_rows"
    ok = evaluate("active", policy, None, req(context={"rows": 5}), NOW)
    assert ok.authorized and ok.permission_id == allow["id"] and ok.conditions == {"max_rows": 5}


def test_tool_rules():
    policy = compile_policy([row("tool:*", "invoke")])
    call = req("tool:t", "invoke", tool="t", parameters={"n": "x"})
    assert evaluate("active", policy, None, call, NOW).reason == "unknown tool 't'"
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    tool = compile_tool(
        id=uuid.uuid4(), name="t", requires_approval=False, parameters_schema=schema
    )
    bad = evaluate("active", policy, tool, call, NOW)
    assert bad.rule == "parameters_schema" and "$.n: 'x' is not of type 'integer'" in bad.reason
    good = req("tool:t", "invoke", tool="t", parameters={"n": 1})
    assert evaluate("active", policy, tool, good, NOW).authorized
    gated = compile_tool(id=uuid.uuid4(), name="t", requires_approval=True, parameters_schema={})
    assert evaluate("active", policy, gated, good, NOW).outcome == "approval"


def test_merge_approval_conditions():
    decision = evaluate(
        "active", compile_policy([row("db:a", conditions={"max_rows": 100})]), None, req(), NOW
    )
    merged, broken = merge_approval_conditions(
        decision, {"max_rows": 10}, req(context={"rows": 10})
    )
    assert merged["max_rows"] == 10 and broken is None
    _, broken = merge_approval_conditions(decision, {"max_rows": 10}, req(context={"rows": 11}))
    assert broken == "context.rows 11 exceeds max_rows 10 of the approval"


# --- property tests against a reference model written straight from API.md -------------------

PATTERNS = ["*", "db:*", "file:*", "db:a", "db:b", "file:a"]
RESOURCES = ["db:a", "db:b", "file:a", "api:x"]
WINDOWS = [
    None,
    ("09:00-17:00", None),
    ("22:00-06:00", None),
    ("09:00-17:00", "Asia/Tokyo"),
    ("23:30-00:30", "America/New_York"),
]


def _spec(pattern: str) -> int:
    return 0 if pattern == "*" else 1 if pattern.endswith(":*") else 2


def _matches(pattern: str, resource: str) -> bool:
    if pattern == "*" or pattern == resource:
        return True
    return pattern.endswith(":*") and resource.split(":", 1)[0] == pattern[:-2]


def _window_open(cond: dict[str, Any], now: datetime) -> bool:
    if "time_window" not in cond:
        return True
    start, end = cond["time_window"].split("-")
    zone = ZoneInfo(cond.get("timezone") or "UTC")
    local = now.astimezone(zone)
    t = f"{local.hour:02d}:{local.minute:02d}"
    return start <= t < end if start < end else (t >= start or t < end)


def reference(status: str, rows: list[dict[str, Any]], r: AuthzRequest, now: datetime):
    if status != "active":
        return ("deny", None, "agent_not_active")
    live = [
        p
        for p in rows
        if (p["expires_at"] is None or p["expires_at"] > now)
        and _matches(p["resource"], r.resource)
        and p["action"] in ("*", r.action)
    ]
    order = lambda p: (-_spec(p["resource"]), str(p["id"]))  # noqa: E731
    denies = sorted(
        (p for p in live if p["effect"] == "deny" and _window_open(p["conditions"], now)), key=order
    )
    if denies:
        return ("deny", denies[0]["id"], "deny_permission")
    allows = sorted((p for p in live if p["effect"] == "allow"), key=order)
    if not allows:
        return ("deny", None, "no_permission")

    def failure(p: dict[str, Any]) -> str | None:
        if not _window_open(p["conditions"], now):
            return "time_window"
        cap = p["conditions"].get("max_rows")
        rows_ = r.context.get("rows")
        if cap is not None and rows_ is not None and rows_ > cap:
            return "max_rows"
        return None

    for p in allows:
        if failure(p) is None:
            if p["conditions"].get("requires_approval"):
                return ("approval", p["id"], "requires_approval")
            return ("allow", p["id"], "allowed")
    return ("deny", allows[0]["id"], failure(allows[0]))


@st.composite
def permission_rows(draw) -> dict[str, Any]:
    effect = draw(st.sampled_from(["allow", "allow", "deny"]))
    cond: dict[str, Any] = {}
    window = draw(st.sampled_from(WINDOWS))
    if window is not None:
        cond["time_window"] = window[0]
        if window[1]:
            cond["timezone"] = window[1]
    if effect == "allow":
        cap = draw(st.sampled_from([None, 0, 5, 10]))
        if cap is not None:
            cond["max_rows"] = cap
        if draw(st.booleans()) and draw(st.booleans()):
            cond["requires_approval"] = True
    expires = draw(st.sampled_from([None, None, -1, 1]))
    return row(
        draw(st.sampled_from(PATTERNS)),
        draw(st.sampled_from(["read", "write", "*"])),
        effect,
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        conditions=cond,
        expires_at=None if expires is None else NOW + timedelta(hours=expires * 24 * 365 * 10),
    )


# Permission ids are unique in the database, so they are here.
policies = st.lists(permission_rows(), max_size=8, unique_by=lambda r: r["id"])
moments = st.datetimes(min_value=datetime(2030, 1, 1), max_value=datetime(2032, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
requests = st.builds(
    lambda resource, action, rows: req(
        resource, action, context={} if rows is None else {"rows": rows}
    ),
    st.sampled_from(RESOURCES),
    st.sampled_from(["read", "write"]),
    st.sampled_from([None, 0, 5, 6, 10, 11]),
)


@settings(max_examples=400, deadline=None)
@given(
    status=st.sampled_from(["active", "active", "active", "suspended", "expired"]),
    rows=policies,
    request=requests,
    now=moments,
)
def test_decision_matches_the_reference_model(status, rows, request, now):
    decision = evaluate(status, compile_policy(rows), None, request, now)
    assert (decision.outcome, decision.permission_id, decision.rule) == reference(
        status, rows, request, now
    )


@settings(max_examples=200, deadline=None)
@given(rows=policies, request=requests, now=moments)
def test_a_matching_deny_always_wins(rows, request, now):
    deny = row(request.resource, request.action, "deny")
    decision = evaluate("active", compile_policy([*rows, deny]), None, request, now)
    assert decision.outcome == "deny" and decision.rule == "deny_permission"


@settings(max_examples=200, deadline=None)
@given(rows=policies, request=requests, now=moments)
def test_decision_ignores_permission_order(rows, request, now):
    forward = evaluate("active", compile_policy(rows), None, request, now)
    backward = evaluate("active", compile_policy(list(reversed(rows))), None, request, now)
    assert forward == backward

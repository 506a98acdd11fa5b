"""Permission and tool syntax, and their compiled forms (pure: no I/O, no Flask).

Everything here is built once per cache version (see ``policy_cache``), so that a decision only
does dictionary look-ups and comparisons.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import Draft202012Validator, validator_for
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

KIND_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
NAME_RE = re.compile(r"[^\s*]{1,300}")
ACTION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}")
WINDOW_RE = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
CONDITION_KEYS = ("time_window", "timezone", "max_rows", "requires_approval")
MAX_ROWS_LIMIT = 10**15

# Resource specificity: an exact name beats ``kind:*`` beats ``*``.
EXACT, KIND_WILDCARD, ANYTHING = 2, 1, 0


def parse_resource_pattern(pattern: str) -> tuple[str | None, str | None]:
    """``*`` → (None, None); ``kind:*`` → (kind, None); ``kind:name`` → (kind, name).

    Raises ValueError with a message for the caller when the pattern is malformed.
    """
    if pattern == "*":
        return None, None
    kind, sep, name = pattern.partition(":")
    if not sep or not KIND_RE.fullmatch(kind):
        raise ValueError("must be '*', 'kind:*' or 'kind:name' (kind: letters, digits, _ . -)")
    if name == "*":
        return kind, None
    if not NAME_RE.fullmatch(name):
        raise ValueError("the name after 'kind:' must be '*' or a name without spaces or '*'")
    return kind, name


def parse_request_resource(resource: str) -> tuple[str, str]:
    """A concrete ``kind:name`` (no wildcard). Raises ValueError."""
    kind, name = parse_resource_pattern(resource)
    if kind is None or name is None:
        raise ValueError("must be a concrete 'kind:name' resource (no '*')")
    return kind, name


def check_action(action: str, *, pattern: bool) -> None:
    """A word (letters, digits, ``_ . : -``), or ``*`` in a permission. Raises ValueError."""
    if pattern and action == "*":
        return
    if not ACTION_RE.fullmatch(action):
        raise ValueError(
            "must be a word of letters, digits, _ . : -" + (" or '*'" if pattern else "")
        )


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """``[start, end)`` in minutes of the day in ``zone``; wraps midnight when start > end."""

    start: int
    end: int
    zone: ZoneInfo | None
    text: str

    @property
    def zone_name(self) -> str:
        return self.zone.key if self.zone is not None else "UTC"

    def local_minute(self, now: datetime) -> int:
        local = now.astimezone(self.zone) if self.zone is not None else now
        return local.hour * 60 + local.minute

    def is_open(self, now: datetime) -> bool:
        minute = self.local_minute(now)
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


def parse_time_window(text: Any, timezone: Any) -> TimeWindow:
    """Parse ``"HH:MM-HH:MM"`` (end may be ``24:00``) and an optional IANA zone. ValueError."""
    if not isinstance(text, str):
        raise ValueError("time_window must be a string 'HH:MM-HH:MM'")
    match = WINDOW_RE.fullmatch(text.strip())
    if not match:
        raise ValueError("time_window must look like 'HH:MM-HH:MM', e.g. '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError("time_window hours are 00-23 (24:00 as an end) and minutes 00-59")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError("time_window start and end must differ")
    zone = None
    if timezone is not None:
        if not isinstance(timezone, str) or not timezone.strip():
            raise ValueError("timezone must be an IANA time zone name such as 'Europe/Paris'")
        try:
            zone = ZoneInfo(timezone.strip())
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {timezone!r}") from exc
    return TimeWindow(start, end, zone, text.strip())


def validate_conditions(conditions: Mapping[str, Any], effect: str) -> dict[str, list[str]]:
    """Field errors of a permission's ``conditions`` (empty when valid)."""
    errors: dict[str, list[str]] = {}
    for key in conditions:
        if key not in CONDITION_KEYS:
            errors[key] = [f"unknown condition; allowed: {', '.join(CONDITION_KEYS)}"]
    if "time_window" in conditions:
        try:
            parse_time_window(conditions["time_window"], conditions.get("timezone"))
        except ValueError as exc:
            errors["timezone" if "zone" in str(exc) else "time_window"] = [str(exc)]
    elif "timezone" in conditions:
        errors["timezone"] = ["timezone applies to a time_window, which is missing"]
    if "max_rows" in conditions:
        rows = conditions["max_rows"]
        if isinstance(rows, bool) or not isinstance(rows, int) or not 0 <= rows <= MAX_ROWS_LIMIT:
            errors["max_rows"] = ["must be an integer >= 0"]
    if "requires_approval" in conditions and not isinstance(conditions["requires_approval"], bool):
        errors["requires_approval"] = ["must be true or false"]
    if effect == "deny":
        for key in ("max_rows", "requires_approval"):
            if key in conditions:
                errors.setdefault(key, []).append(
                    "a deny permission takes only time_window (and timezone)"
                )
    return errors


@dataclass(frozen=True, slots=True)
class CompiledPermission:
    id: uuid.UUID
    resource: str
    action: str
    effect: str
    specificity: int
    expires_at: datetime | None
    window: TimeWindow | None
    max_rows: int | None
    requires_approval: bool
    conditions: Mapping[str, Any]

    def is_live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    def covers_action(self, action: str) -> bool:
        return self.action == "*" or self.action == action


def compile_permission(
    *,
    id: uuid.UUID,
    resource: str,
    action: str,
    effect: str,
    conditions: Mapping[str, Any] | None,
    expires_at: datetime | None,
) -> tuple[CompiledPermission, str | None, str | None]:
    """The compiled permission and its parsed (kind, name) pattern."""
    conditions = dict(conditions or {})
    kind, name = parse_resource_pattern(resource)
    specificity = ANYTHING if kind is None else KIND_WILDCARD if name is None else EXACT
    window = None
    if "time_window" in conditions:
        window = parse_time_window(conditions["time_window"], conditions.get("timezone"))
    max_rows = conditions.get("max_rows")
    perm = CompiledPermission(
        id=id,
        resource=resource,
        action=action,
        effect=effect,
        specificity=specificity,
        expires_at=expires_at,
        window=window,
        max_rows=int(max_rows) if max_rows is not None else None,
        requires_approval=bool(conditions.get("requires_approval", False)),
        conditions=conditions,
    )
    return perm, kind, name


@dataclass(slots=True)
class _Index:
    exact: dict[tuple[str, str], list[CompiledPermission]] = field(default_factory=dict)
    by_kind: dict[str, list[CompiledPermission]] = field(default_factory=dict)
    anything: list[CompiledPermission] = field(default_factory=list)

    def add(self, perm: CompiledPermission, kind: str | None, name: str | None) -> None:
        if kind is None:
            self.anything.append(perm)
        elif name is None:
            self.by_kind.setdefault(kind, []).append(perm)
        else:
            self.exact.setdefault((kind, name), []).append(perm)

    def freeze(self) -> None:
        by_id = _id_order
        for bucket in (*self.exact.values(), *self.by_kind.values(), self.anything):
            bucket.sort(key=by_id)

    def candidates(self, kind: str, name: str) -> list[CompiledPermission]:
        """Permissions whose resource pattern matches, most specific first, ties by id."""
        return [
            *self.exact.get((kind, name), ()),
            *self.by_kind.get(kind, ()),
            *self.anything,
        ]


def _id_order(perm: CompiledPermission) -> str:
    return str(perm.id)


@dataclass(slots=True)
class Policy:
    """An agent's permissions, indexed by resource pattern, split by effect."""

    allow: _Index = field(default_factory=_Index)
    deny: _Index = field(default_factory=_Index)
    size: int = 0


def compile_policy(rows: Iterable[Mapping[str, Any]]) -> Policy:
    """Build the look-up structure from permission rows (mappings of the model's columns)."""
    policy = Policy()
    for row in rows:
        perm, kind, name = compile_permission(
            id=row["id"],
            resource=row["resource"],
            action=row["action"],
            effect=row["effect"],
            conditions=row["conditions"],
            expires_at=row["expires_at"],
        )
        (policy.deny if perm.effect == "deny" else policy.allow).add(perm, kind, name)
        policy.size += 1
    policy.allow.freeze()
    policy.deny.freeze()
    return policy


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def check_json_schema(schema: Any) -> str | None:
    """None when ``schema`` is a valid JSON Schema whose references all resolve inside it,
    else a message naming the problem. Remote references are never fetched."""
    if not isinstance(schema, dict):
        return "parameters_schema must be a JSON object"
    if "$schema" in schema and not isinstance(schema["$schema"], str):
        return "invalid JSON Schema at $schema: must be a string (a dialect URI)"
    try:
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"invalid JSON Schema at {where}: {exc.message}"
    try:
        dialect = schema.get("$schema")
        spec = specification_with(dialect, default=DRAFT202012) if dialect else DRAFT202012
        resource = spec.create_resource(schema)
        resolver = Registry().with_resource("", resource).resolver(base_uri=resource.id() or "")
        for ref in _refs(schema):
            resolver.lookup(ref)
    except Unresolvable as exc:
        return f"invalid JSON Schema: reference {exc.ref!r} does not resolve within the schema"
    except (ValueError, TypeError, LookupError) as exc:  # malformed identifiers and the like
        return f"invalid JSON Schema: {exc}"
    return None


@dataclass(frozen=True, slots=True)
class CompiledTool:
    id: uuid.UUID
    name: str
    requires_approval: bool
    validator: Validator

    def first_error(self, parameters: Any) -> str | None:
        """The most relevant schema error as ``path: message``, or None when valid."""
        try:
            error = best_match(self.validator.iter_errors(parameters))
        except Unresolvable as exc:  # a schema stored before references were checked
            return f"$: the tool's parameters_schema has an unresolvable reference {exc.ref!r}"
        if error is None:
            return None
        where = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        return f"{where}: {error.message}"


def compile_tool(
    *, id: uuid.UUID, name: str, requires_approval: bool, parameters_schema: dict[str, Any]
) -> CompiledTool:
    cls = validator_for(parameters_schema, default=Draft202012Validator)
    return CompiledTool(id, name, requires_approval, cls(parameters_schema))

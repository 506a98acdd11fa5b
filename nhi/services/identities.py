"""Lifecycle of non-human identities, shared by service accounts and AI agents.

Every state transition is a single conditional UPDATE checked by rowcount, so two concurrent
callers cannot both win (the loser gets a 409).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from nhi import clock
from nhi.errors import Conflict, NotFound, ValidationFailed
from nhi.extensions import db
from nhi.models.base import contains_text
from nhi.models.identities import (
    RISK_LEVELS,
    STATUSES,
    Identity,
    effective_status_expr,
    higher_level,
)
from nhi.principal import Principal
from nhi.services import audit, events

TYPE_LABEL = {"service_account": "service account", "ai_agent": "agent"}
UPDATABLE = {"name", "description", "risk_level", "expires_at", "model", "max_actions_per_minute"}
AGENT_ONLY = {"model", "max_actions_per_minute"}
DEFAULT_MAX_ACTIONS_PER_MINUTE = 60


@dataclass(frozen=True)
class IdentityFilters:
    nhi_type: str | None = None
    status: str | None = None
    risk_level: str | None = None
    owner_id: uuid.UUID | None = None
    search: str | None = None


def _label(nhi_type: str | None) -> str:
    return TYPE_LABEL.get(nhi_type or "", "identity")


def _live(tenant_id: uuid.UUID, nhi_type: str | None) -> list[sa.ColumnElement[bool]]:
    conds = [Identity.tenant_id == tenant_id, Identity.deleted_at.is_(None)]
    if nhi_type:
        conds.append(Identity.nhi_type == nhi_type)
    return conds


def get_identity(
    tenant_id: uuid.UUID, identity_id: uuid.UUID, nhi_type: str | None = None
) -> Identity:
    """The live identity, or NotFound (also for other tenants' ids and deleted identities)."""
    row = db.session.execute(
        db.select(Identity).where(Identity.id == identity_id, *_live(tenant_id, nhi_type))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No {_label(nhi_type)} with id {identity_id}.")
    return row


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= clock.now():
        raise ValidationFailed(
            "expires_at must be in the future.", errors={"expires_at": ["must be in the future"]}
        )


def _duplicate(nhi_type: str, name: str) -> Conflict:
    return Conflict(
        f"A {_label(nhi_type)} named {name!r} already exists in this tenant.",
        errors={"name": ["already exists"]},
    )


def _name_taken(tenant_id: uuid.UUID, nhi_type: str, name: str, exclude: uuid.UUID | None) -> bool:
    conds = [*_live(tenant_id, nhi_type), Identity.name == name]
    if exclude is not None:
        conds.append(Identity.id != exclude)
    return db.session.execute(db.select(Identity.id).where(*conds).limit(1)).first() is not None


def _commit_unique(nhi_type: str, name: str) -> None:
    """Commit; a unique-name race lost at the database becomes the same 409 as the pre-check."""
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise _duplicate(nhi_type, name) from exc


def snapshot(identity: Identity) -> dict[str, Any]:
    return {
        "id": identity.id,
        "nhi_type": identity.nhi_type,
        "name": identity.name,
        "owner_id": identity.owner_id,
        "status": identity.effective_status(clock.now()),
        "risk_level": identity.risk_level,
    }


def create_identity(actor: Principal, nhi_type: str, data: dict[str, Any]) -> Identity:
    """Register a new identity of ``nhi_type``. Raises ValidationFailed, Conflict (name)."""
    declared = data.get("nhi_type")
    if declared is not None and declared != nhi_type:
        raise ValidationFailed(
            f"nhi_type must be {nhi_type!r} on this endpoint.",
            errors={"nhi_type": [f"must be {nhi_type!r}"]},
        )
    _check_expiry(data.get("expires_at"))
    if nhi_type != "ai_agent" and AGENT_ONLY & data.keys():
        raise ValidationFailed(
            "model and max_actions_per_minute apply to agents only.",
            errors={k: ["applies to agents only"] for k in AGENT_ONLY & data.keys()},
        )
    name = data["name"]
    if _name_taken(actor.tenant_id, nhi_type, name, None):
        raise _duplicate(nhi_type, name)
    now = clock.now()
    risk_level = data.get("risk_level") or "medium"
    identity = Identity(
        id=uuid.uuid4(),
        tenant_id=actor.tenant_id,
        nhi_type=nhi_type,
        name=name,
        description=data.get("description"),
        owner_id=data["owner_id"],
        status="active",
        risk_level=risk_level,
        effective_risk_level=risk_level,
        expires_at=data.get("expires_at"),
        created_at=now,
        updated_at=now,
        version=1,
    )
    if nhi_type == "ai_agent":
        identity.model = data.get("model")
        identity.max_actions_per_minute = data.get(
            "max_actions_per_minute", DEFAULT_MAX_ACTIONS_PER_MINUTE
        )
    db.session.add(identity)
    audit.record(actor, "nhi.created", nhi_id=identity.id, details={"identity": snapshot(identity)})
    events.emit(actor.tenant_id, "nhi.created", snapshot(identity))
    _commit_unique(nhi_type, name)
    return identity


def list_identities(
    tenant_id: uuid.UUID, filters: IdentityFilters, *, limit: int, offset: int
) -> tuple[list[Identity], int]:
    now = clock.now()
    conds = _live(tenant_id, filters.nhi_type)
    if filters.status:
        conds.append(effective_status_expr(now) == filters.status)
    if filters.risk_level:
        conds.append(Identity.effective_risk_level == filters.risk_level)
    if filters.owner_id:
        conds.append(Identity.owner_id == filters.owner_id)
    if filters.search:
        conds.append(contains_text(filters.search, Identity.name, Identity.description))
    total = db.session.execute(
        db.select(sa.func.count()).select_from(Identity).where(*conds)
    ).scalar_one()
    rows = db.session.execute(
        db.select(Identity)
        .where(*conds)
        .order_by(Identity.created_at.desc(), Identity.id.desc())
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(rows), total


def summary(tenant_id: uuid.UUID, nhi_type: str | None) -> dict[str, Any]:
    """Counts of live identities by effective status and effective risk level (one query each)."""
    status = effective_status_expr(clock.now()).label("s")
    conds = _live(tenant_id, nhi_type)
    by_status = dict.fromkeys(STATUSES, 0)
    for key, count in db.session.execute(
        db.select(status, sa.func.count()).where(*conds).group_by(status)
    ):
        by_status[key] = count
    by_risk = dict.fromkeys(RISK_LEVELS, 0)
    for key, count in db.session.execute(
        db.select(Identity.effective_risk_level, sa.func.count())
        .where(*conds)
        .group_by(Identity.effective_risk_level)
    ):
        by_risk[key] = count
    return {"total": sum(by_status.values()), "by_status": by_status, "by_risk_level": by_risk}


def update_identity(
    actor: Principal, nhi_type: str, identity_id: uuid.UUID, changes: dict[str, Any]
) -> Identity:
    """Partial update of the descriptive fields. Raises NotFound, Conflict, ValidationFailed."""
    identity = get_identity(actor.tenant_id, identity_id, nhi_type)
    unknown = set(changes) - UPDATABLE
    if nhi_type != "ai_agent":
        unknown |= AGENT_ONLY & changes.keys()
    if unknown:
        raise ValidationFailed(
            "These fields cannot be updated here.",
            errors={k: ["cannot be updated on this resource"] for k in sorted(unknown)},
        )
    if "expires_at" in changes:
        _check_expiry(changes["expires_at"])
    if (
        changes.get("name")
        and changes["name"] != identity.name
        and _name_taken(actor.tenant_id, nhi_type, changes["name"], identity.id)
    ):
        raise _duplicate(nhi_type, changes["name"])
    before = {k: getattr(identity, k) for k in changes}
    for key, value in changes.items():
        setattr(identity, key, value)
    if "risk_level" in changes:
        identity.effective_risk_level = higher_level(
            identity.risk_level, identity.computed_risk_level
        )
    changed = {k: {"from": before[k], "to": v} for k, v in changes.items() if before[k] != v}
    if changed:
        identity.version = Identity.version + 1
        identity.updated_at = clock.now()
        audit.record(actor, "nhi.updated", nhi_id=identity.id, details={"changes": changed})
    _commit_unique(nhi_type, identity.name)
    db.session.refresh(identity)
    return identity


def _transition(
    actor: Principal,
    nhi_type: str,
    identity_id: uuid.UUID,
    *,
    allowed_from: tuple[str, ...],
    values: dict[str, Any],
    extra_where: list[sa.ColumnElement[bool]] | None = None,
) -> bool:
    """One conditional UPDATE; True when this caller won the transition."""
    now = clock.now()
    stmt = (
        sa.update(Identity)
        .where(
            Identity.id == identity_id,
            *_live(actor.tenant_id, nhi_type),
            Identity.status.in_(allowed_from),
            *(extra_where or []),
        )
        .values(**values, version=Identity.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]


def suspend(actor: Principal, nhi_type: str, identity_id: uuid.UUID, reason: str) -> Identity:
    """active/expired → suspended; its tokens and authorize calls are refused at once."""
    won = _transition(
        actor,
        nhi_type,
        identity_id,
        allowed_from=("active", "expired"),
        values={"status": "suspended", "suspension_reason": reason},
    )
    identity = _after_transition(actor, nhi_type, identity_id, won, "suspend")
    audit.record(actor, "nhi.suspended", nhi_id=identity_id, reason=reason)
    events.emit(actor.tenant_id, "nhi.suspended", {**snapshot(identity), "reason": reason})
    db.session.commit()
    return identity


def reactivate(actor: Principal, nhi_type: str, identity_id: uuid.UUID, reason: str) -> Identity:
    """suspended → active (or expired when past its expires_at)."""
    now = clock.now()
    new_status = sa.case(
        (sa.and_(Identity.expires_at.is_not(None), Identity.expires_at <= now), "expired"),
        else_="active",
    )
    won = _transition(
        actor,
        nhi_type,
        identity_id,
        allowed_from=("suspended",),
        values={"status": new_status, "suspension_reason": None},
    )
    identity = _after_transition(actor, nhi_type, identity_id, won, "reactivate")
    audit.record(actor, "nhi.reactivated", nhi_id=identity_id, reason=reason)
    events.emit(actor.tenant_id, "nhi.reactivated", {**snapshot(identity), "reason": reason})
    db.session.commit()
    return identity


def transfer(
    actor: Principal,
    nhi_type: str,
    identity_id: uuid.UUID,
    new_owner_id: uuid.UUID,
    reason: str | None,
) -> Identity:
    """Change the accountable owner. Same owner or a decommissioned identity → Conflict."""
    current = get_identity(actor.tenant_id, identity_id, nhi_type)
    previous_owner = current.owner_id
    if previous_owner == new_owner_id:
        raise Conflict(f"The {_label(nhi_type)} is already owned by {new_owner_id}.")
    won = _transition(
        actor,
        nhi_type,
        identity_id,
        allowed_from=("active", "suspended", "expired"),
        values={"owner_id": new_owner_id},
        extra_where=[Identity.owner_id == previous_owner],
    )
    identity = _after_transition(actor, nhi_type, identity_id, won, "transfer")
    details = {"from_owner_id": previous_owner, "to_owner_id": new_owner_id}
    audit.record(
        actor, "nhi.ownership_transferred", nhi_id=identity_id, reason=reason, details=details
    )
    events.emit(
        actor.tenant_id,
        "nhi.ownership_transferred",
        {**snapshot(identity), **details, "reason": reason},
    )
    db.session.commit()
    return identity


def delete_identity(actor: Principal, nhi_type: str, identity_id: uuid.UUID) -> None:
    """Soft delete: reads answer 404 from now on, the audit trail stays readable."""
    identity = get_identity(actor.tenant_id, identity_id, nhi_type)
    data = snapshot(identity)
    now = clock.now()
    result = db.session.execute(
        sa.update(Identity)
        .where(Identity.id == identity_id, *_live(actor.tenant_id, nhi_type))
        .values(
            deleted_at=now, tokens_valid_after=now, version=Identity.version + 1, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise NotFound(f"No {_label(nhi_type)} with id {identity_id}.")
    audit.record(actor, "nhi.deleted", nhi_id=identity_id, details={"identity": data})
    events.emit(actor.tenant_id, "nhi.deleted", data)
    db.session.commit()


def _after_transition(
    actor: Principal, nhi_type: str, identity_id: uuid.UUID, won: bool, verb: str
) -> Identity:
    if not won:
        db.session.rollback()
        identity = get_identity(actor.tenant_id, identity_id, nhi_type)  # 404 if it is gone
        status = identity.effective_status(clock.now())
        raise Conflict(
            f"Cannot {verb} a {_label(nhi_type)} whose status is {status!r}.",
            extra={"current_status": status},
        )
    identity = get_identity(actor.tenant_id, identity_id, nhi_type)
    db.session.refresh(identity)
    return identity

"""Audit trail: append in the caller's transaction, seal into a hash chain later, verify.

Appending touches no shared row, so concurrent requests of one tenant never wait on each other.
``seal_chain`` links unsealed rows (in insertion order) to the tenant's chain head under a row lock
on that head; ``verify_chain`` seals first, then recomputes every link.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from nhi import clock
from nhi.extensions import db
from nhi.models.audit import AuditChainHead, AuditEvent
from nhi.models.base import upsert_insert
from nhi.principal import Principal
from nhi.serialization import jsonable

GENESIS = "0" * 64
SEAL_BATCH = 1000


def record(
    actor: Principal,
    event_type: str,
    *,
    nhi_id: uuid.UUID | None = None,
    resource: str | None = None,
    action: str | None = None,
    decision: str | None = None,
    reason: str | None = None,
    decision_id: uuid.UUID | None = None,
    approval_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> AuditEvent:
    """Add an audit event to the current session; it commits with the change it describes."""
    event = AuditEvent(
        id=uuid.uuid4(),
        tenant_id=actor.tenant_id,
        occurred_at=occurred_at or clock.now(),
        event_type=event_type,
        actor_id=actor.sub,
        actor_type=actor.actor_type,
        nhi_id=nhi_id,
        resource=resource,
        action=action,
        decision=decision,
        reason=reason,
        decision_id=decision_id,
        approval_id=approval_id,
        details=jsonable(details or {}),
    )
    db.session.add(event)
    return event


def _uuid(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def event_digest(event: AuditEvent, chain_index: int, prev_hash: str) -> str:
    """SHA-256 over a canonical JSON of every stored field plus the link to the previous row."""
    body = {
        "id": str(event.id),
        "tenant_id": str(event.tenant_id),
        "occurred_at": clock.isoformat(event.occurred_at),
        "event_type": event.event_type,
        "actor_id": event.actor_id,
        "actor_type": event.actor_type,
        "nhi_id": _uuid(event.nhi_id),
        "resource": event.resource,
        "action": event.action,
        "decision": event.decision,
        "reason": event.reason,
        "decision_id": _uuid(event.decision_id),
        "approval_id": _uuid(event.approval_id),
        "details": event.details,
        "chain_index": chain_index,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_head(tenant_id: uuid.UUID) -> AuditChainHead:
    values = {"tenant_id": tenant_id, "last_index": 0, "last_hash": GENESIS}
    db.session.execute(upsert_insert(AuditChainHead).values(**values).on_conflict_do_nothing())
    return db.session.execute(
        db.select(AuditChainHead)
        .where(AuditChainHead.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def seal_chain(tenant_id: uuid.UUID) -> int:
    """Link every unsealed event of the tenant into its chain; returns how many were sealed."""
    sealed = 0
    while True:
        head = _lock_head(tenant_id)
        rows = (
            db.session.execute(
                db.select(AuditEvent)
                .where(AuditEvent.tenant_id == tenant_id, AuditEvent.hash.is_(None))
                .order_by(AuditEvent.seq)
                .limit(SEAL_BATCH)
            )
            .scalars()
            .all()
        )
        if not rows:
            db.session.commit()
            return sealed
        index, prev = head.last_index, head.last_hash
        for row in rows:
            index += 1
            digest = event_digest(row, index, prev)
            row.chain_index, row.prev_hash, row.hash = index, prev, digest
            prev = digest
        head.last_index, head.last_hash, head.sealed_at = index, prev, clock.now()
        db.session.commit()
        sealed += len(rows)


@dataclass
class ChainReport:
    intact: bool
    checked: int
    sealed_now: int
    first_broken_index: int | None = None
    first_broken_event_id: uuid.UUID | None = None
    problem: str | None = None


def verify_chain(tenant_id: uuid.UUID) -> ChainReport:
    """Seal what is pending, then recompute the whole chain of the tenant."""
    sealed_now = seal_chain(tenant_id)
    head = db.session.get(AuditChainHead, tenant_id)
    expected_prev, expected_index, checked = GENESIS, 0, 0
    last_id = 0
    while True:
        rows = (
            db.session.execute(
                db.select(AuditEvent)
                .where(AuditEvent.tenant_id == tenant_id, AuditEvent.chain_index > last_id)
                .order_by(AuditEvent.chain_index)
                .limit(SEAL_BATCH)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for row in rows:
            expected_index += 1
            problem = None
            if row.chain_index != expected_index:
                problem = f"event(s) missing before chain index {row.chain_index}"
            elif row.prev_hash != expected_prev:
                problem = "link to the previous event does not match"
            elif event_digest(row, row.chain_index, expected_prev) != row.hash:
                problem = "event content does not match its hash"
            if problem:
                return ChainReport(False, checked, sealed_now, expected_index, row.id, problem)
            checked += 1
            expected_prev = row.hash or ""
            last_id = row.chain_index
        db.session.expunge_all()
    head_index = head.last_index if head else 0
    head_hash = head.last_hash if head else GENESIS
    if head_index != expected_index or head_hash != expected_prev:
        return ChainReport(
            False,
            checked,
            sealed_now,
            expected_index + 1,
            None,
            "the newest sealed events are missing from the chain",
        )
    return ChainReport(True, checked, sealed_now)


def list_events(
    tenant_id: uuid.UUID,
    *,
    nhi_id: uuid.UUID | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEvent], int]:
    """Newest first; ``since`` inclusive, ``until`` exclusive."""
    conds: list[sa.ColumnElement[bool]] = [AuditEvent.tenant_id == tenant_id]
    if nhi_id is not None:
        conds.append(AuditEvent.nhi_id == nhi_id)
    if event_type:
        conds.append(AuditEvent.event_type == event_type)
    if since is not None:
        conds.append(AuditEvent.occurred_at >= since)
    if until is not None:
        conds.append(AuditEvent.occurred_at < until)
    total = db.session.execute(
        db.select(sa.func.count()).select_from(AuditEvent).where(*conds)
    ).scalar_one()
    rows = (
        db.session.execute(
            db.select(AuditEvent)
            .where(*conds)
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.seq.desc())
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )
    return list(rows), total


def seal_all_chains() -> int:
    """Seal the pending events of every tenant that has some (the periodic sealing job)."""
    tenants = list(
        db.session.execute(
            db.select(AuditEvent.tenant_id).where(AuditEvent.hash.is_(None)).distinct()
        ).scalars()
    )
    db.session.commit()
    return sum(seal_chain(tenant_id) for tenant_id in tenants)

"""Turn trace results into versioned freeze orders: one live order per account and currency.

An order gets a new version only when what an institution would do about it
changes (hold, priority, status or evidence), so redelivered or replayed input
emits nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from processors.money_trail import CaseTrace, Holding, Taint, TrailStep
from processors.priority import freeze_priority
from processors.records import AccountKey, Report, account_label
from schemas.fields import format_minor_units

# What a consumer acts on; a change in any of it is a new version.
Fingerprint = tuple[str, int, int, int, int, int, tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class FreezeOrder:
    action_id: str
    version: int
    status: str
    target: AccountKey
    currency: str
    hold: int
    priority: int
    hop: int
    received: int
    moved_on: int
    report_ids: tuple[str, ...]
    txn_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    trail: tuple[TrailStep, ...]
    issued_at_ms: int
    report_received_at_ms: int
    hold_expires_at_ms: int

    @property
    def fingerprint(self) -> Fingerprint:
        return order_fingerprint(
            self.status, self.hold, self.priority, self.hop, self.received, self.moved_on, self.report_ids, self.txn_ids
        )


def order_fingerprint(
    status: str,
    hold: int,
    priority: int,
    hop: int,
    received: int,
    moved_on: int,
    report_ids: tuple[str, ...],
    txn_ids: tuple[str, ...],
) -> Fingerprint:
    return (status, hold, priority, hop, received, moved_on, report_ids, txn_ids)


def freeze_action_id(holding: Holding) -> str:
    """Stable across restarts and workers: derived from the target and currency alone."""
    account, currency = holding
    digest = hashlib.sha256(f"{account_label(account)}|{currency}".encode()).hexdigest()
    return f"frz-{digest[:24]}"


@dataclass(slots=True)
class _Issued:
    version: int
    fingerprint: Fingerprint
    order: FreezeOrder | None


class FreezeBook:
    """The last version issued for every action id, and the rule for issuing the next."""

    def __init__(self, *, max_hops: int, hold_duration_ms: int) -> None:
        self._max_hops = max_hops
        self._hold_duration_ms = hold_duration_ms
        self._issued: dict[str, _Issued] = {}

    def __len__(self) -> int:
        return len(self._issued)

    def restore(self, action_id: str, version: int, fingerprint: Fingerprint) -> None:
        """Remember an order already on the actions topic (start-up recovery); keeps the highest version."""
        known = self._issued.get(action_id)
        if known is None or known.version < version:
            self._issued[action_id] = _Issued(version, fingerprint, None)

    def live_orders(self) -> list[FreezeOrder]:
        return [i.order for i in self._issued.values() if i.order is not None and i.order.status == "active"]

    def update(
        self,
        changed: Mapping[Holding, Taint | None],
        traces: Mapping[Holding, CaseTrace],
        reports: Mapping[str, Report],
        now_ms: int,
    ) -> list[FreezeOrder]:
        """New order versions for the holdings whose trace changed, highest priority first."""
        orders = []
        for holding in sorted(changed):
            taint = changed[holding]
            if taint is None:
                order = self._released(holding, now_ms)
            else:
                order = self._active(holding, taint, traces[holding], reports, now_ms)
            if order is not None:
                orders.append(order)
        orders.sort(key=lambda o: (-o.priority, o.action_id))
        return orders

    def _active(
        self, holding: Holding, taint: Taint, trace: CaseTrace, reports: Mapping[str, Report], now_ms: int
    ) -> FreezeOrder | None:
        account, currency = holding
        behind = [reports[r] for r in sorted(taint.report_ids)]
        trail = tuple(trace.trail(taint))
        priority = freeze_priority(
            remaining=taint.remaining,
            received=taint.received,
            currency=currency,
            hop=taint.hop,
            max_hops=self._max_hops,
            last_arrival_ms=taint.last_arrival_ms,
            latest_report_ms=max(r.reported_at_ms for r in behind),
            report_count=len(behind),
        )
        fingerprint = order_fingerprint(
            "active",
            taint.remaining,
            priority,
            taint.hop,
            taint.received,
            taint.moved_on,
            tuple(r.report_id for r in behind),
            tuple(dict.fromkeys(step.txn_id for step in trail)),
        )
        version = self._next_version(holding, fingerprint)
        if version is None:
            return None
        order = FreezeOrder(
            action_id=freeze_action_id(holding),
            version=version,
            status="active",
            target=account,
            currency=currency,
            hold=taint.remaining,
            priority=priority,
            hop=taint.hop,
            received=taint.received,
            moved_on=taint.moved_on,
            report_ids=fingerprint[6],
            txn_ids=fingerprint[7],
            reasons=_reasons(taint, len(behind)),
            trail=trail,
            issued_at_ms=now_ms,
            report_received_at_ms=min(r.received_at_ms for r in behind),
            hold_expires_at_ms=max(r.received_at_ms for r in behind) + self._hold_duration_ms,
        )
        self._issued[order.action_id].order = order
        return order

    def _released(self, holding: Holding, now_ms: int) -> FreezeOrder | None:
        action_id = freeze_action_id(holding)
        known = self._issued.get(action_id)
        if known is None or known.fingerprint[0] == "released":
            return None
        fingerprint = order_fingerprint("released", 0, 0, known.fingerprint[3], 0, 0, (), ())
        version = self._next_version(holding, fingerprint)
        if version is None:
            return None
        previous = known.order
        order = FreezeOrder(
            action_id=action_id,
            version=version,
            status="released",
            target=holding[0],
            currency=holding[1],
            hold=0,
            priority=0,
            hop=fingerprint[3],
            received=0,
            moved_on=0,
            report_ids=(),
            txn_ids=(),
            reasons=("a re-trace with later bank records attributes no reported money here: lift the hold",),
            trail=(),
            issued_at_ms=now_ms,
            report_received_at_ms=previous.report_received_at_ms if previous else now_ms,
            hold_expires_at_ms=now_ms,
        )
        self._issued[action_id].order = order
        return order

    def _next_version(self, holding: Holding, fingerprint: Fingerprint) -> int | None:
        action_id = freeze_action_id(holding)
        known = self._issued.get(action_id)
        if known is not None and known.fingerprint == fingerprint:
            return None
        version = 1 if known is None else known.version + 1
        self._issued[action_id] = _Issued(version, fingerprint, known.order if known else None)
        return version


def _reasons(taint: Taint, report_count: int) -> tuple[str, ...]:
    def money(minor: int) -> str:
        return f"{format_minor_units(minor, taint.currency)} {taint.currency}"

    reasons = [
        f"received {money(taint.received)} of reported money"
        + (" directly from the victim" if taint.hop == 0 else f" {taint.hop} hop(s) from the victim")
    ]
    if taint.moved_on:
        reasons.append(f"{money(taint.moved_on)} already moved on; the hold covers only what is traced as still here")
    if taint.remaining == 0:
        reasons.append("pass-through account: nothing to hold, flag for review")
    if report_count > 1:
        reasons.append(f"corroborated by {report_count} reports")
    return tuple(reasons)

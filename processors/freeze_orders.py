"""Turn trace results into versioned freeze orders: one live order per account and currency.

An order gets a new version only when what an institution would do about it
changes (hold, priority, status or evidence), so redelivered or replayed input
emits nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

from processors.money_trail import CaseTrace, Holding, Taint, TrailStep
from processors.priority import freeze_priority
from processors.records import AccountKey, Report, account_label
from processors.telecom import AccountLink
from processors.versions import VersionBook, escalated, escalated_priority, escalation_reason
from schemas.fields import format_minor_units

# What a consumer acts on; a change in any of it is a new version.
Fingerprint = tuple[str, int, int, int, int, int, tuple[str, ...], tuple[str, ...], int]
LINKED_PRIORITY = 30  # an account tied to a reported number, with no money traced to it: below any traced hold


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
    escalation: int = 0
    base_priority: int = 0  # before escalation; not on the wire

    kind = "freeze"

    @property
    def addressee(self) -> str:
        """The institution that must act: the bank, wallet provider or exchange holding the account."""
        return self.target[1]

    @property
    def fingerprint(self) -> Fingerprint:
        return order_fingerprint(
            self.status,
            self.hold,
            self.priority,
            self.hop,
            self.received,
            self.moved_on,
            self.report_ids,
            self.txn_ids,
            self.escalation,
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
    escalation: int = 0,
) -> Fingerprint:
    return (status, hold, priority, hop, received, moved_on, report_ids, txn_ids, escalation)


def freeze_action_id(holding: Holding) -> str:
    """Stable across restarts and workers: derived from the target and currency alone."""
    account, currency = holding
    digest = hashlib.sha256(f"{account_label(account)}|{currency}".encode()).hexdigest()
    return f"frz-{digest[:24]}"


class FreezeBook:
    """The last version issued for every action id, and the rule for issuing the next."""

    def __init__(self, *, max_hops: int, hold_duration_ms: int) -> None:
        self._max_hops = max_hops
        self._hold_duration_ms = hold_duration_ms
        self.versions: VersionBook[FreezeOrder] = VersionBook()
        self._linked: dict[str, AccountKey] = {}  # orders that exist only because of a payment-proxy link

    def __len__(self) -> int:
        return len(self.versions)

    def restore(self, action_id: str, version: int, fingerprint: Fingerprint, escalation: int = 0) -> None:
        """Remember an order already on the actions topic (start-up recovery); keeps the highest version."""
        self.versions.restore(action_id, version, fingerprint, escalation)

    def live_orders(self) -> list[FreezeOrder]:
        return [i.order for _, i in self.versions if i.order is not None and i.order.status == "active"]

    def order(self, action_id: str) -> FreezeOrder | None:
        issued = self.versions.get(action_id)
        return issued.order if issued is not None else None

    def adopt(
        self,
        changed: Mapping[Holding, Taint | None],
        traces: Mapping[Holding, CaseTrace],
        reports: Mapping[str, Report],
        now_ms: int,
    ) -> int:
        """After recovery: rebuild the orders behind restored versions, issuing nothing. Returns how many matched."""
        adopted = 0
        for holding, taint in changed.items():
            if taint is None:
                continue
            order = self._build(holding, taint, traces[holding], reports, now_ms, version=0)
            issued = self.versions.get(order.action_id)
            if issued is not None and self.versions.adopt(
                order.action_id, order.fingerprint, replace(order, version=issued.version)
            ):
                adopted += 1
        return adopted

    def update_links(
        self, links: Mapping[AccountKey, AccountLink | None], reports: Mapping[str, Report], now_ms: int
    ) -> list[FreezeOrder]:
        """Orders for accounts tied to a reported number (payment proxies): nothing to hold, flag for review.

        An account the money trail reaches keeps its traced order; the link only adds an order where
        the trail has none.
        """
        orders = []
        for account in sorted(links):
            link = links[account]
            if link is None:
                for action_id in [a for a, held in self._linked.items() if held == account]:
                    del self._linked[action_id]
                    order = self._released((account, self._currency_of(action_id)), now_ms)
                    if order is not None:
                        orders.append(order)
                continue
            behind = [reports[r] for r in link.report_ids if r in reports]
            if not behind:
                continue
            currency = behind[0].transfers[0].currency if behind[0].transfers else "THB"
            holding = (account, currency)
            action_id = freeze_action_id(holding)
            current = self.order(action_id)
            if current is not None and current.status == "active" and action_id not in self._linked:
                continue  # the trail already has an order here, with its evidence
            order = self._issue(
                FreezeOrder(
                    action_id=action_id,
                    version=0,
                    status="active",
                    target=account,
                    currency=currency,
                    hold=0,
                    priority=LINKED_PRIORITY,
                    hop=0,
                    received=0,
                    moved_on=0,
                    report_ids=tuple(r.report_id for r in behind),
                    txn_ids=(),
                    reasons=(link.reason, "no reported money traced here: nothing to hold, flag for review"),
                    trail=(),
                    issued_at_ms=now_ms,
                    report_received_at_ms=min(r.received_at_ms for r in behind),
                    hold_expires_at_ms=max(r.received_at_ms for r in behind) + self._hold_duration_ms,
                    base_priority=LINKED_PRIORITY,
                )
            )
            self._linked[action_id] = account
            if order is not None:
                orders.append(order)
        return orders

    def _currency_of(self, action_id: str) -> str:
        order = self.order(action_id)
        return order.currency if order is not None else "THB"

    def escalate(self, action_id: str, now_ms: int) -> FreezeOrder | None:
        """Re-issue an active order that missed its SLA, with raised priority and an ``escalated`` reason."""
        current = self.order(action_id)
        if current is None or current.status != "active":
            return None
        order = escalated(current, self.versions.raise_escalation(action_id), now_ms)
        return self._issue(order)

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
                self._linked.pop(freeze_action_id(holding), None)
                order = self._active(holding, taint, traces[holding], reports, now_ms)
            if order is not None:
                orders.append(order)
        orders.sort(key=lambda o: (-o.priority, o.action_id))
        return orders

    def _active(
        self, holding: Holding, taint: Taint, trace: CaseTrace, reports: Mapping[str, Report], now_ms: int
    ) -> FreezeOrder | None:
        order = self._build(holding, taint, trace, reports, now_ms, version=0)
        return self._issue(order)

    def _build(
        self,
        holding: Holding,
        taint: Taint,
        trace: CaseTrace,
        reports: Mapping[str, Report],
        now_ms: int,
        version: int,
    ) -> FreezeOrder:
        account, currency = holding
        action_id = freeze_action_id(holding)
        behind = [reports[r] for r in sorted(taint.report_ids)]
        trail = tuple(trace.trail(taint))
        base_priority = freeze_priority(
            remaining=taint.remaining,
            received=taint.received,
            currency=currency,
            hop=taint.hop,
            max_hops=self._max_hops,
            last_arrival_ms=taint.last_arrival_ms,
            latest_report_ms=max(r.reported_at_ms for r in behind),
            report_count=len(behind),
        )
        level = self.versions.escalation(action_id)
        reasons = _reasons(taint, len(behind))
        return FreezeOrder(
            action_id=action_id,
            version=version,
            status="active",
            target=account,
            currency=currency,
            hold=taint.remaining,
            priority=escalated_priority(base_priority, level),
            hop=taint.hop,
            received=taint.received,
            moved_on=taint.moved_on,
            report_ids=tuple(r.report_id for r in behind),
            txn_ids=tuple(dict.fromkeys(step.txn_id for step in trail)),
            reasons=(*reasons, escalation_reason(level)) if level else reasons,
            trail=trail,
            issued_at_ms=now_ms,
            report_received_at_ms=min(r.received_at_ms for r in behind),
            hold_expires_at_ms=max(r.received_at_ms for r in behind) + self._hold_duration_ms,
            escalation=level,
            base_priority=base_priority,
        )

    def _issue(self, order: FreezeOrder) -> FreezeOrder | None:
        version = self.versions.next_version(order.action_id, order.fingerprint)
        if version is None:
            return None
        issued = replace(order, version=version)
        self.versions.record(order.action_id, version, order.fingerprint, issued)
        return issued

    def _released(self, holding: Holding, now_ms: int) -> FreezeOrder | None:
        action_id = freeze_action_id(holding)
        known = self.versions.get(action_id)
        if known is None or known.fingerprint[0] == "released":  # type: ignore[index]
            return None
        previous = known.order
        return self._issue(
            FreezeOrder(
                action_id=action_id,
                version=0,
                status="released",
                target=holding[0],
                currency=holding[1],
                hold=0,
                priority=0,
                hop=known.fingerprint[3],  # type: ignore[index]
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
        )


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

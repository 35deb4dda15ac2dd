"""Turn trace results into freeze orders: one order per account and currency.

What an order says is decided from the current state of its holding alone (its
trace, else a payment-proxy link, else nothing: a ``Withdrawal``), so the order in
which traces and links arrive, or a restart between them, never changes the
outcome. Versions are not kept here: the action book (``processors/action_book.py``)
issues a new one only when what an institution would do about the order changes
(hold, priority, status or evidence), so redelivered or replayed input emits nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from processors.action_book import Withdrawal, with_escalation
from processors.money_trail import Holding, HoldingTrace, TrailStep, evidence_digest
from processors.priority import freeze_priority
from processors.records import AccountKey, Report, account_label
from processors.telecom import AccountLink
from schemas.fields import format_minor_units

# What a consumer acts on; a change in any of it is a new version. The digest covers the evidence.
Fingerprint = tuple[str, int, int, int, int, int, str, int]
LINKED_PRIORITY = 30  # an account tied to a reported number, with no money traced to it: below any traced hold
RELEASE_REASON = "a re-trace with later records attributes no reported money here: lift the hold"


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
    evidence_digest: str
    escalation: int = 0
    base_priority: int = 0  # before escalation; not on the wire
    trail_steps_total: int = -1  # -1: ``trail`` is complete; set when restored from a bounded wire action

    kind = "freeze"

    @property
    def addressee(self) -> str:
        """The institution that must act: the bank, wallet provider or exchange holding the account."""
        return self.target[1]

    @property
    def fingerprint(self) -> Fingerprint:
        return (
            self.status,
            self.hold,
            self.priority,
            self.hop,
            self.received,
            self.moved_on,
            self.evidence_digest,
            self.escalation,
        )

    def escalated(self, level: int, now_ms: int) -> FreezeOrder:
        return with_escalation(self, level, now_ms)

    def released(self, now_ms: int, reason: str | None = None) -> FreezeOrder:
        """Lift the hold: same target, currency and hop, nothing held, no evidence."""
        return replace(
            self,
            version=0,
            status="released",
            hold=0,
            priority=0,
            received=0,
            moved_on=0,
            report_ids=(),
            txn_ids=(),
            reasons=(reason or RELEASE_REASON,),
            trail=(),
            issued_at_ms=now_ms,
            hold_expires_at_ms=now_ms,
            evidence_digest=evidence_digest((), ()),
            escalation=0,
            base_priority=0,
            trail_steps_total=-1,
        )


def freeze_action_id(holding: Holding) -> str:
    """Stable across restarts and workers: derived from the target and currency alone."""
    account, currency = holding
    digest = hashlib.sha256(f"{account_label(account)}|{currency}".encode()).hexdigest()
    return f"frz-{digest[:24]}"


class FreezeBook:
    """Traced holdings and payment-proxy links: what the freeze order of each holding should say now.

    It keeps no versions: ``update`` returns proposals and withdrawals for the action book. Only
    reports in force count: a trace of nothing but expired reports' money is no trace (the trail
    may follow that money further, but nothing is held for it any more), and ``forget`` drops the
    traces and links that only expired reports stand behind.
    """

    def __init__(self, *, max_hops: int, hold_duration_ms: int) -> None:
        self._max_hops = max_hops
        self._hold_duration_ms = hold_duration_ms
        self._traced: dict[Holding, HoldingTrace] = {}
        self._links: dict[AccountKey, tuple[AccountLink, Holding]] = {}

    def update(
        self,
        traces: Mapping[Holding, HoldingTrace | None],
        links: Mapping[AccountKey, AccountLink | None],
        reports: Mapping[str, Report],
        now_ms: int,
    ) -> list[FreezeOrder | Withdrawal]:
        """Take the changed traces and links; what every holding they touched calls for now, by holding."""
        wanted: list[FreezeOrder | Withdrawal] = []
        for holding in sorted(self._take(traces, links, reports)):
            order = self._decide(holding, reports, now_ms)
            wanted.append(Withdrawal(freeze_action_id(holding)) if order is None else order)
        return wanted

    def take_quietly(self, traces: Mapping[Holding, HoldingTrace | None], reports: Mapping[str, Report]) -> int:
        """Take changed traces without deciding (orders follow when something next touches them); traces dropped."""
        before = len(self._traced)
        self._take(traces, {}, reports)
        return max(0, before - len(self._traced))

    def forget(self, in_force: Callable[[str], bool]) -> int:
        """Drop the traces and links no report ``in_force`` stands behind any more, deciding nothing; how many."""
        traced = [h for h, trace in self._traced.items() if not any(map(in_force, trace.report_ids))]
        linked = [a for a, (link, _) in self._links.items() if not any(map(in_force, link.report_ids))]
        for holding in traced:
            del self._traced[holding]
        for account in linked:
            del self._links[account]
        return len(traced) + len(linked)

    def _take(
        self,
        traces: Mapping[Holding, HoldingTrace | None],
        links: Mapping[AccountKey, AccountLink | None],
        reports: Mapping[str, Report],
    ) -> set[Holding]:
        """Record the new traces and links; returns every holding whose order may have changed."""
        touched = set(traces)
        for holding, trace in traces.items():
            if trace is None or not any(r in reports for r in trace.report_ids):
                self._traced.pop(holding, None)
            else:
                self._traced[holding] = trace
        for account, link in links.items():
            previous = self._links.pop(account, None)
            if previous is not None:
                touched.add(previous[1])
            if link is not None:
                holding = (account, _link_currency(link, reports))
                self._links[account] = (link, holding)
                touched.add(holding)
        return touched

    def _decide(self, holding: Holding, reports: Mapping[str, Report], now_ms: int) -> FreezeOrder | None:
        """The order this holding calls for now: traced money, else a payment-proxy link, else none."""
        trace = self._traced.get(holding)
        if trace is not None:
            return self._traced_order(trace, reports, now_ms)
        linked = self._links.get(holding[0])
        if linked is not None and linked[1] == holding:
            return self._linked_order(linked[0], holding, reports, now_ms)
        return None

    def _traced_order(self, trace: HoldingTrace, reports: Mapping[str, Report], now_ms: int) -> FreezeOrder:
        holding = trace.holding
        action_id = freeze_action_id(holding)
        behind = [reports[r] for r in trace.report_ids if r in reports]
        hold = trace.received if trace.hub_reason else trace.remaining
        base_priority = freeze_priority(
            remaining=hold,
            received=trace.received,
            currency=trace.currency,
            hop=trace.hop,
            max_hops=self._max_hops,
            last_arrival_ms=trace.last_arrival_ms,
            latest_report_ms=max((r.reported_at_ms for r in behind), default=trace.last_arrival_ms),
            report_count=len(trace.report_ids),
        )
        return FreezeOrder(
            action_id=action_id,
            version=0,
            status="active",
            target=trace.account,
            currency=trace.currency,
            hold=hold,
            priority=base_priority,
            hop=trace.hop,
            received=trace.received,
            moved_on=0 if trace.hub_reason else trace.moved_on,
            report_ids=trace.report_ids,
            txn_ids=tuple(dict.fromkeys(step.txn_id for step in trace.trail)),
            reasons=_reasons(trace, hold),
            trail=trace.trail,
            issued_at_ms=now_ms,
            report_received_at_ms=min((r.received_at_ms for r in behind), default=now_ms),
            hold_expires_at_ms=max((r.received_at_ms for r in behind), default=now_ms) + self._hold_duration_ms,
            evidence_digest=_traced_evidence(trace),
            base_priority=base_priority,
        )

    def _linked_order(
        self, link: AccountLink, holding: Holding, reports: Mapping[str, Report], now_ms: int
    ) -> FreezeOrder | None:
        behind = [reports[r] for r in link.report_ids if r in reports]
        if not behind:
            return None
        report_ids = tuple(r.report_id for r in behind)
        return FreezeOrder(
            action_id=freeze_action_id(holding),
            version=0,
            status="active",
            target=holding[0],
            currency=holding[1],
            hold=0,
            priority=LINKED_PRIORITY,
            hop=0,
            received=0,
            moved_on=0,
            report_ids=report_ids,
            txn_ids=(),
            reasons=(link.reason, "no reported money traced here: nothing to hold, flag for review"),
            trail=(),
            issued_at_ms=now_ms,
            report_received_at_ms=min(r.received_at_ms for r in behind),
            hold_expires_at_ms=max(r.received_at_ms for r in behind) + self._hold_duration_ms,
            evidence_digest=evidence_digest(report_ids, (), (link.reason,)),
            base_priority=LINKED_PRIORITY,
        )


def _traced_evidence(trace: HoldingTrace) -> str:
    """The trace's evidence digest, plus the hub reason when the trail stops here (that changes what to do)."""
    digest = trace.digest or evidence_digest(trace.report_ids, trace.trail)
    if trace.hub_reason is None:
        return digest
    return "sha256:" + hashlib.sha256(f"{digest}|{trace.hub_reason}".encode()).hexdigest()


def _link_currency(link: AccountLink, reports: Mapping[str, Report]) -> str:
    """A proxy order is in the currency of the first report naming the number (by report id)."""
    for report_id in link.report_ids:
        report = reports.get(report_id)
        if report is not None and report.transfers:
            return report.transfers[0].currency
    return "THB"


def _reasons(trace: HoldingTrace, hold: int) -> tuple[str, ...]:
    def money(minor: int) -> str:
        return f"{format_minor_units(minor, trace.currency)} {trace.currency}"

    reasons = [
        f"received {money(trace.received)} of reported money"
        + (" directly from the victim" if trace.hop == 0 else f" {trace.hop} hop(s) from the victim")
    ]
    if trace.hub_reason:
        reasons.append(trace.hub_reason)
    elif trace.moved_on:
        reasons.append(f"{money(trace.moved_on)} already moved on; the hold covers only what is traced as still here")
    if hold == 0:
        reasons.append("pass-through account: nothing to hold, flag for review")
    if len(trace.report_ids) > 1:
        reasons.append(f"corroborated by {len(trace.report_ids)} reports")
    return tuple(reasons)

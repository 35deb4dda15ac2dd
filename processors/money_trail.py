"""Follow reported money through mule accounts.

The attribution rule (documented in the README, "Money trail"):

* Each reported transfer victim -> A puts a *lot* of tainted money at A (hop 0).
* Events at an account are taken in time order. A transfer out of an account
  draws on the tainted lots already there, oldest first (FIFO), before any clean
  money: mules rarely hold money of their own, and this never attributes more
  than arrived. A lot older than ``trace_window`` is not drawn on any more: its
  money is treated as still held there.
* The part of a transfer drawn from lots becomes new lots at the receiving
  account, one hop further, up to ``max_hops``. Tainted money is only followed
  in the lot's own currency.
* Money that left before the tainted money arrived is never followed.

The trace of a case (the reports whose money meets in some account) is a pure
function of the reports and the indexed transactions, recomputed whenever
either changes. That is what makes the result independent of arrival order.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

from processors.records import AccountKey, Report, Transfer

# One outgoing transfer as the index stores it: (at_ms, txn_id, target, amount, currency).
Outflow = tuple[int, str, AccountKey, int, str]
# Where a traced amount sits: (account, currency).
Holding = tuple[AccountKey, str]
StepKey = tuple[str, str, int]  # (txn_id, report_id, hop)


@dataclass(frozen=True, slots=True)
class TraceSettings:
    trace_window_ms: int = 72 * 3600 * 1000
    max_hops: int = 4
    history_retention_ms: int = 7 * 24 * 3600 * 1000


class TransactionIndex:
    """Outgoing transfers per account, deduplicated by ``txn_id``, in compact tuples."""

    def __init__(self) -> None:
        self._outgoing: dict[AccountKey, list[Outflow]] = {}
        self._seen: dict[str, int] = {}
        self._accounts: dict[AccountKey, AccountKey] = {}
        self._new_accounts: list[AccountKey] = []
        self.watermark_ms = 0

    def __len__(self) -> int:
        return len(self._seen)

    def intern(self, account: AccountKey) -> AccountKey:
        known = self._accounts.get(account)
        if known is None:
            kind, institution, number = account
            known = (sys.intern(kind), sys.intern(institution), sys.intern(number))
            self._accounts[known] = known
            self._new_accounts.append(known)
        return known

    def drain_new_accounts(self) -> list[AccountKey]:
        """Accounts seen for the first time since the last call (for payment-proxy links)."""
        drained, self._new_accounts = self._new_accounts, []
        return drained

    def add(self, transfer: Transfer) -> bool:
        """Index a transfer; False if its ``txn_id`` was indexed before (a redelivery)."""
        if transfer.txn_id in self._seen:
            return False
        self._seen[transfer.txn_id] = transfer.at_ms
        source = self.intern(transfer.source)
        outflow = (
            transfer.at_ms,
            transfer.txn_id,
            self.intern(transfer.target),
            transfer.amount,
            transfer.currency,
        )
        outgoing = self._outgoing.get(source)
        if outgoing is None:
            self._outgoing[source] = [outflow]
        else:
            outgoing.append(outflow)
        if transfer.at_ms > self.watermark_ms:
            self.watermark_ms = transfer.at_ms
        return True

    def outflows(self, account: AccountKey, since_ms: int) -> list[Outflow]:
        return sorted(o for o in self._outgoing.get(account, ()) if o[0] >= since_ms)

    def evict_older_than(self, cutoff_ms: int, keep: Container[AccountKey] = ()) -> int:
        """Forget transfers executed before ``cutoff_ms``, except those out of ``keep``; returns how many went."""
        before = len(self._seen)
        for account in list(self._outgoing):
            if account in keep:
                continue
            kept = [o for o in self._outgoing[account] if o[0] >= cutoff_ms]
            if kept:
                self._outgoing[account] = kept
            else:
                del self._outgoing[account]
        self._seen = {outflow[1]: outflow[0] for outflows in self._outgoing.values() for outflow in outflows}
        return before - len(self._seen)


@dataclass(frozen=True, slots=True)
class TrailStep:
    txn_id: str
    report_id: str
    hop: int
    source: AccountKey
    target: AccountKey
    tainted_amount: int
    currency: str
    at_ms: int


@dataclass(slots=True)
class Taint:
    """What the trace attributes to one account in one currency."""

    account: AccountKey
    currency: str
    received: int = 0
    moved_on: int = 0
    hop: int = sys.maxsize
    first_arrival_ms: int = sys.maxsize
    last_arrival_ms: int = 0
    report_ids: set[str] = field(default_factory=set)
    path_keys: set[StepKey] = field(default_factory=set)

    @property
    def remaining(self) -> int:
        return self.received - self.moved_on


@dataclass(frozen=True, slots=True)
class CaseTrace:
    """The full trace of one case: every holding the reports' money reached."""

    report_ids: frozenset[str]
    taints: dict[Holding, Taint]
    steps: dict[StepKey, TrailStep]
    beyond_max_hops: int

    def trail(self, taint: Taint) -> list[TrailStep]:
        return sorted((self.steps[key] for key in taint.path_keys), key=lambda s: (s.at_ms, s.hop, s.txn_id))


@dataclass(slots=True)
class _Lot:
    report_id: str
    amount: int
    currency: str
    hop: int
    arrived_ms: int
    path: tuple[StepKey, ...]


def trace_case(reports: Iterable[Report], index: TransactionIndex, settings: TraceSettings) -> CaseTrace:
    """Simulate the reports' tainted money through the indexed transfers, in event-time order."""
    ordered = sorted(reports, key=lambda r: r.report_id)
    # Heap entries: (time, 0 = arrival | 1 = outflow, txn_id, sequence, account, lot or outflow).
    # Arrivals at a time come before outflows at that time; the sequence makes every tie deterministic.
    heap: list[tuple[int, int, str, int, AccountKey, _Lot | Outflow]] = []
    sequence = 0
    steps: dict[StepKey, TrailStep] = {}
    step_amounts: dict[StepKey, int] = {}

    def record_step(
        txn_id: str,
        report_id: str,
        hop: int,
        src: AccountKey,
        dst: AccountKey,
        amount: int,
        currency: str,
        at: int,
    ) -> StepKey:
        key = (txn_id, report_id, hop)
        step_amounts[key] = step_amounts.get(key, 0) + amount
        steps[key] = TrailStep(txn_id, report_id, hop, src, dst, step_amounts[key], currency, at)
        return key

    def arrive(account: AccountKey, lot: _Lot, txn_id: str) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(heap, (lot.arrived_ms, 0, txn_id, sequence, account, lot))

    for report in ordered:
        for sent in report.transfers:
            target = index.intern(sent.target)
            key = record_step(
                sent.txn_id, report.report_id, 0, sent.source, target, sent.amount, sent.currency, sent.at_ms
            )
            arrive(target, _Lot(report.report_id, sent.amount, sent.currency, 0, sent.at_ms, (key,)), sent.txn_id)

    lots: dict[AccountKey, list[_Lot]] = {}
    taints: dict[Holding, Taint] = {}
    beyond_max_hops = 0

    while heap:
        at_ms, _, txn_id, _, account, item = heapq.heappop(heap)
        if isinstance(item, _Lot):
            lot = item
            held = lots.get(account)
            if held is None:
                held = lots[account] = []
                # First tainted arrival: every later transfer out of the account may carry it on.
                for outflow in index.outflows(account, since_ms=at_ms):
                    sequence += 1
                    heapq.heappush(heap, (outflow[0], 1, outflow[1], sequence, account, outflow))
            held.append(lot)
            taint = taints.get((account, lot.currency))
            if taint is None:
                taint = taints[(account, lot.currency)] = Taint(account, lot.currency)
            taint.received += lot.amount
            taint.hop = min(taint.hop, lot.hop)
            taint.first_arrival_ms = min(taint.first_arrival_ms, at_ms)
            taint.last_arrival_ms = max(taint.last_arrival_ms, at_ms)
            taint.report_ids.add(lot.report_id)
            taint.path_keys.update(lot.path)
            continue

        source, (_, _, target, amount, currency) = account, item
        unclaimed = amount
        for lot in lots[source]:
            if unclaimed == 0:
                break
            if lot.amount == 0 or lot.currency != currency or at_ms - lot.arrived_ms > settings.trace_window_ms:
                continue
            taken = min(unclaimed, lot.amount)
            lot.amount -= taken
            unclaimed -= taken
            taints[(source, currency)].moved_on += taken
            hop = lot.hop + 1
            if hop > settings.max_hops:
                beyond_max_hops += taken
                continue
            key = record_step(txn_id, lot.report_id, hop, source, target, taken, currency, at_ms)
            arrive(target, _Lot(lot.report_id, taken, currency, hop, at_ms, (*lot.path, key)), txn_id)

    return CaseTrace(frozenset(r.report_id for r in ordered), taints, steps, beyond_max_hops)


class MoneyTrail:
    """Reports and the transaction index, grouped into cases that are re-traced when they change.

    A case is the set of reports whose money reaches a common account: their lots
    compete for the same outflows, so they must be traced together.
    """

    def __init__(self, settings: TraceSettings) -> None:
        self.settings = settings
        self.index = TransactionIndex()
        self.reports: dict[str, Report] = {}
        self._case_reports: dict[str, set[str]] = {}
        self._case_of_report: dict[str, str] = {}
        self._owner: dict[AccountKey, str] = {}
        self._traces: dict[str, CaseTrace] = {}
        self._dirty: set[str] = set()
        self._superseded: set[Holding] = set()

    @property
    def traces(self) -> dict[str, CaseTrace]:
        return self._traces

    def add_report(self, report: Report) -> bool:
        """Take a report; False if an identical one was already taken."""
        known = self.reports.get(report.report_id)
        if known == report:
            return False
        if known is not None and _same_content(known, report):
            return False
        self.reports[report.report_id] = report
        case = self._case_of_report.get(report.report_id)
        if case is None:
            case = report.report_id
            self._case_reports[case] = {report.report_id}
            self._case_of_report[report.report_id] = case
        for sent in report.transfers:
            other = self._owner.get(sent.target)
            if other is not None and other != case:
                case = self._merge(case, other)
        self._dirty.add(case)
        return True

    def add_transaction(self, transfer: Transfer) -> bool:
        """Index a bank transfer; False for a redelivered ``txn_id``."""
        if not self.index.add(transfer):
            return False
        case = self._owner.get(transfer.source)
        if case is not None:
            self._dirty.add(case)
        return True

    def retrace(self) -> tuple[dict[Holding, Taint | None], dict[Holding, CaseTrace]]:
        """Re-trace every case that changed since the last call.

        Returns the new taint of every holding those cases reach, with ``None``
        for holdings a re-trace no longer reaches, and the case trace each
        live holding belongs to (for its evidence).
        """
        before: set[Holding] = set()
        recomputed: set[str] = set()
        while self._dirty:
            case = self._dirty.pop()
            previous = self._traces.pop(case, None)
            if previous is not None:
                before.update(previous.taints)
            result = trace_case((self.reports[r] for r in self._case_reports[case]), self.index, self.settings)
            others = {self._owner[a] for a, _ in result.taints if self._owner.get(a, case) != case}
            if others:
                # The money met another case's money: trace them together from scratch.
                for other in others:
                    recomputed.discard(other)
                    self._merge(case, other)
                continue
            for account, _ in result.taints:
                self._owner[account] = case
            self._traces[case] = result
            recomputed.add(case)
        before.update(self._superseded)
        self._superseded.clear()
        changed: dict[Holding, Taint | None] = {}
        owners: dict[Holding, CaseTrace] = {}
        for case in recomputed:
            case_trace = self._traces[case]
            for holding, taint in case_trace.taints.items():
                changed[holding] = taint
                owners[holding] = case_trace
        for holding in before:
            changed.setdefault(holding, None)
        return changed, owners

    def evict(self) -> int:
        """Drop transfers older than the history retention, measured on the feed's own clock.

        Transfers out of accounts a case has reached stay: they are that case's evidence, and a
        re-trace without them would wrongly release holds downstream.
        """
        cutoff = self.index.watermark_ms - self.settings.history_retention_ms
        return self.index.evict_older_than(cutoff, keep=self._owner.keys())

    def _merge(self, keep: str, gone: str) -> str:
        # The joint trace replaces the gone case's trace. Merges also happen in add_report, between
        # retraces: without this the old trace stayed in ``traces`` for good, and a holding only it
        # reached was never withdrawn (None) when the joint trace no longer reached it.
        stale = self._traces.pop(gone, None)
        if stale is not None:
            self._superseded.update(stale.taints)
        for report_id in self._case_reports.pop(gone):
            self._case_reports[keep].add(report_id)
            self._case_of_report[report_id] = keep
        for account, owner in self._owner.items():
            if owner == gone:
                self._owner[account] = keep
        self._dirty.discard(gone)
        self._dirty.add(keep)
        return keep


def _same_content(a: Report, b: Report) -> bool:
    # A redelivered report differs only in when the broker received it.
    return a.transfers == b.transfers and a.reported_at_ms == b.reported_at_ms

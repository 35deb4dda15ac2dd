"""Follow reported money through mule accounts, re-tracing only what changed.

The rules are written out once, in ``processors.trace_reference`` (the reference
oracle this engine is held to by property tests). In short: transfers are taken in
``(executed_at, txn_id)`` order; an account's outflows draw on the tainted lots that
reached it, oldest first; a reported transfer is tainted in full and counted once;
hop distance is the account's distance from the victims; hubs hold what they
received and pass nothing on.

Why it is incremental: an account's allocation of tainted lots to its outflows
depends only on the lots that reached it and its own transfers. So each account is
recomputed on its own, when one of those changes, and only a changed outflow
content (the absolute tainted content of a transfer: latest value wins) marks its
receiving account for recomputation. A transfer's content depends only on
transfers earlier in the order, so this converges to the oracle's result in any
arrival order, and the work per batch follows what changed, not the size of a case.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain

from processors.records import AccountKey, Report, Transfer, account_label

Holding = tuple[AccountKey, str]  # where a traced amount sits: (account, currency)
# One transfer on a lot's path: (txn_id, hop, source, target, at_ms, currency, amount). Hop 0 = a reported transfer.
Step = tuple[str, int, AccountKey, AccountKey, int, str, int]
# A piece of tainted money: (amount, the reports it belongs to, the transfers it took to get here).
Lot = tuple[int, frozenset[str], tuple[Step, ...]]
# The effective record of a transfer: (at_ms, source, target, amount, currency).
Record = tuple[int, AccountKey, AccountKey, int, str]
Flow = tuple[str, AccountKey]  # (txn_id, source)

UNREACHED = sys.maxsize


@dataclass(frozen=True, slots=True)
class TraceSettings:
    trace_window_ms: int = 72 * 3600 * 1000
    max_hops: int = 4
    history_retention_ms: int = 7 * 24 * 3600 * 1000
    hub_counterparties: int = 50
    hub_accounts: frozenset[str] = frozenset()  # account labels; ``kind:institution:*`` names a whole institution

    def listed_hub(self, account: AccountKey) -> bool:
        if not self.hub_accounts:
            return False
        kind, institution, _ = account
        return account_label(account) in self.hub_accounts or f"{kind}:{institution}:*" in self.hub_accounts


@dataclass(frozen=True, slots=True)
class TrailStep:
    """One transfer on the way from the victims to a holding, and how much of what reached the holding it carried."""

    txn_id: str
    report_ids: tuple[str, ...]
    hop: int
    source: AccountKey
    target: AccountKey
    tainted_amount: int
    currency: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class HoldingTrace:
    """What the trace attributes to one account in one currency, with its evidence."""

    account: AccountKey
    currency: str
    received: int
    moved_on: int
    hop: int
    first_arrival_ms: int
    last_arrival_ms: int
    report_ids: tuple[str, ...]
    trail: tuple[TrailStep, ...]
    hub_reason: str | None = None
    digest: str = field(default="", compare=False)  # evidence_digest(report_ids, trail), when already known

    @property
    def holding(self) -> Holding:
        return (self.account, self.currency)

    @property
    def remaining(self) -> int:
        return self.received - self.moved_on


def evidence_digest(report_ids: tuple[str, ...], trail: tuple[TrailStep, ...], extra: tuple[str, ...] = ()) -> str:
    """``sha256:<hex>`` of the full evidence, so an action listing only part of a long trail still pins all of it."""
    digest = hashlib.sha256()
    for part in (*report_ids, "|", *extra, "|"):
        digest.update(part.encode())
        digest.update(b"\x00")
    for step in trail:
        fields = (step.txn_id, ",".join(step.report_ids), str(step.hop), account_label(step.source),
                  account_label(step.target), str(step.tainted_amount), step.currency, str(step.at_ms))  # fmt: skip
        digest.update("\x1f".join(fields).encode())
        digest.update(b"\x00")
    return "sha256:" + digest.hexdigest()


def hub_reason(listed: bool, counterparties: int) -> str:
    if listed:
        return "listed as a payment hub: the trail stops here and the hub holds the tainted money it received"
    return (
        f"payment hub ({counterparties} or more counterparties around the tainted money's arrival): the trail stops"
        " here, the hub holds the tainted money it received and its customers are left alone"
    )


def summarise(
    account: AccountKey,
    currency: str,
    arrivals: Iterable[tuple[int, Lot]],
    moved_on: int,
    hop: int,
    hub: str | None,
) -> HoldingTrace:
    """A holding from the lots that reached it, each with its arrival time."""
    received = 0
    first, last = UNREACHED, 0
    reports: set[str] = set()
    steps: dict[Step, tuple[int, set[str]]] = {}
    for at_ms, (amount, lot_reports, path) in arrivals:
        received += amount
        first, last = min(first, at_ms), max(last, at_ms)
        reports.update(lot_reports)
        for step in path:
            carried, step_reports = steps.get(step) or (0, set())
            steps[step] = (carried + amount, step_reports | lot_reports)
    # Money that went round a loop reached the holding more than once through the same transfer;
    # a step never shows more than the transfer itself moved.
    trail = tuple(
        TrailStep(
            txn_id, tuple(sorted(step_reports)), step_hop, source, target, min(carried, moved), step_currency, at_ms
        )
        for (txn_id, step_hop, source, target, at_ms, step_currency, moved), (carried, step_reports) in sorted(
            steps.items(), key=lambda item: (item[0][4], item[0][0])
        )
    )
    report_ids = tuple(sorted(reports))
    return HoldingTrace(
        account, currency, received, moved_on, hop, first, last, report_ids, trail, hub,
        evidence_digest(report_ids, trail),
    )  # fmt: skip


@dataclass(slots=True)
class _Queued:
    """A lot waiting at an account to be drawn on, with what is left of it."""

    left: int
    arrived_ms: int
    reports: frozenset[str]
    path: tuple[Step, ...]


@dataclass(slots=True)
class _Allocation:
    """One account's computed state: what reached it, what it sent on, and the contents of its outflows."""

    hop: int
    hub: str | None
    arrivals: dict[str, list[tuple[int, Lot]]]  # currency -> (arrival time, lot)
    moved_on: dict[str, int]
    sent: dict[str, tuple[Lot, ...]]  # txn_id -> content

    def core(self) -> tuple[object, ...]:
        return (self.hop, self.hub, self.arrivals, self.moved_on)


@dataclass(slots=True)
class _Transfers:
    """Every known transfer, one record per txn_id: the bank feed's, else the lowest report's copy."""

    feed: dict[str, Record] = field(default_factory=dict)
    copies: dict[str, dict[str, Record]] = field(default_factory=dict)  # txn_id -> report_id -> record
    outgoing: dict[AccountKey, list[str]] = field(default_factory=dict)
    incoming: dict[AccountKey, list[str]] = field(default_factory=dict)

    def get(self, txn_id: str) -> Record | None:
        record = self.feed.get(txn_id)
        if record is None:
            copies = self.copies.get(txn_id)
            if copies:
                record = copies[min(copies)]
        return record

    def link(self, txn_id: str, record: Record) -> None:
        self.outgoing.setdefault(record[1], []).append(txn_id)
        self.incoming.setdefault(record[2], []).append(txn_id)

    def unlink(self, txn_id: str, record: Record) -> None:
        for index, account in ((self.outgoing, record[1]), (self.incoming, record[2])):
            txns = index.get(account)
            if txns is not None:
                txns.remove(txn_id)
                if not txns:
                    del index[account]


class MoneyTrail:
    """The transfers, the reports' claims on them, and every account's allocation, kept up to date batch by batch."""

    def __init__(self, settings: TraceSettings) -> None:
        self.settings = settings
        self.reports: dict[str, Report] = {}
        self._transfers = _Transfers()
        self._named: dict[str, frozenset[str]] = {}  # txn_id -> reports naming it
        self._named_out: dict[AccountKey, set[str]] = {}  # account -> reported transfers out of it
        # (txn_id, source) -> tainted content, non-empty only. The source is part of the key because a
        # transfer's record can move to another source (the feed correcting a report) before both settle.
        self._content: dict[Flow, tuple[Lot, ...]] = {}
        self._tainted_in: dict[AccountKey, set[Flow]] = {}
        self._allocations: dict[AccountKey, _Allocation] = {}
        self._summaries: dict[Holding, HoldingTrace] = {}  # the last trace returned per holding
        self._dirty: set[AccountKey] = set()  # accounts whose inputs changed since the last re-trace
        self._accounts: dict[AccountKey, AccountKey] = {}
        self._new_accounts: list[AccountKey] = []
        self.watermark_ms = 0
        self.forgotten_before_ms = -UNREACHED  # the feed before this was evicted; older records are not indexed again

    def __len__(self) -> int:
        """Bank transfers indexed."""
        return len(self._transfers.feed)

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

    # -- input -------------------------------------------------------------------------------------

    def add_transaction(self, transfer: Transfer) -> bool:
        """Index a bank transfer; False for a redelivered ``txn_id`` or one older than the evicted history."""
        txn_id = transfer.txn_id
        transfers = self._transfers
        if txn_id in transfers.feed or transfer.at_ms < self.forgotten_before_ms:
            return False
        record = (transfer.at_ms, self.intern(transfer.source), self.intern(transfer.target), transfer.amount,
                  transfer.currency)  # fmt: skip
        if txn_id in transfers.copies:
            self._replace(txn_id, lambda: transfers.feed.__setitem__(txn_id, record))
        else:
            transfers.feed[txn_id] = record
            transfers.link(txn_id, record)
            self._touch_accounts(record)
        if transfer.at_ms > self.watermark_ms:
            self.watermark_ms = transfer.at_ms
        return True

    def add_report(self, report: Report) -> bool:
        """Take a report, or the correction that replaces it; False if it changes nothing."""
        known = self.reports.get(report.report_id)
        if known is not None and _same_claims(known, report):
            self.reports[report.report_id] = report
            return False
        self.reports[report.report_id] = report
        before = _claims(known) if known is not None else {}
        after = _claims(report)
        for txn_id in sorted(before.keys() | after.keys()):
            sent = after.get(txn_id)
            self._claim(report.report_id, txn_id, None if sent is None else self._record(sent))
        return True

    def _record(self, sent: Transfer) -> Record:
        return (sent.at_ms, self.intern(sent.source), self.intern(sent.target), sent.amount, sent.currency)

    def _claim(self, report_id: str, txn_id: str, record: Record | None) -> None:
        """Set (or withdraw, with None) one report's claim that ``txn_id`` carried its money."""
        transfers = self._transfers

        def apply() -> None:
            copies = transfers.copies.setdefault(txn_id, {})
            if record is None:
                copies.pop(report_id, None)
                if not copies:
                    del transfers.copies[txn_id]
            else:
                copies[report_id] = record
            named = set(self._named.get(txn_id, ()))
            named.discard(report_id) if record is None else named.add(report_id)
            if named:
                self._named[txn_id] = frozenset(named)
            else:
                self._named.pop(txn_id, None)

        self._replace(txn_id, apply)

    def _replace(self, txn_id: str, change: Callable[[], None]) -> None:
        """Apply a change to a transfer's record or claims, keeping the indexes and dirty marks right."""
        transfers = self._transfers
        before = transfers.get(txn_id)
        if before is not None:
            transfers.unlink(txn_id, before)
            self._named_out.get(before[1], set()).discard(txn_id)
            self._touch_accounts(before)
        change()
        after = transfers.get(txn_id)
        if after is not None:
            transfers.link(txn_id, after)
            if txn_id in self._named:
                self._named_out.setdefault(after[1], set()).add(txn_id)
            self._touch_accounts(after)
            self._dirty.add(after[1])

    def _touch_accounts(self, record: Record) -> None:
        # A transfer changes its source's allocation, and a traced target's count of counterparties (hubs).
        source, target = record[1], record[2]
        if source in self._allocations:
            self._dirty.add(source)
        if target in self._allocations:
            self._dirty.add(target)

    # -- re-trace ----------------------------------------------------------------------------------

    def retrace(self) -> dict[Holding, HoldingTrace | None]:
        """Recompute the accounts whose inputs changed, then downstream of them while contents change.

        Returns every holding whose trace changed, with ``None`` for holdings no longer reached.
        Accounts are recomputed in waves: everything marked, then everything their changed outflows
        reached, and so on. An account fed by many others (a cash-out) is then recomputed once per
        wave, not once per account feeding it.
        """
        before: dict[AccountKey, _Allocation | None] = {}
        while self._dirty:
            wave, self._dirty = self._dirty, set()
            for account in sorted(wave):
                if account not in before:
                    before[account] = self._allocations.get(account)
                self._dirty.update(self._allocate(account))
        changed: dict[Holding, HoldingTrace | None] = {}
        for account, old in before.items():
            new = self._allocations.get(account)
            if old is not None and new is not None and old.core() == new.core():
                continue
            if old is not None:
                for currency in old.arrivals:
                    changed[(account, currency)] = None
                    known = self._summaries.pop((account, currency))
                    if new is not None and old.arrivals[currency] == new.arrivals.get(currency):
                        self._summaries[(account, currency)] = known  # the same money arrived: same evidence
            if new is not None:
                for currency, arrivals in new.arrivals.items():
                    trace = self._summaries.get((account, currency))
                    moved_on = new.moved_on.get(currency, 0)
                    if trace is None:
                        trace = summarise(account, currency, arrivals, moved_on, new.hop, new.hub)
                    else:
                        trace = HoldingTrace(
                            account, currency, trace.received, moved_on, new.hop, trace.first_arrival_ms,
                            trace.last_arrival_ms, trace.report_ids, trace.trail, new.hub, trace.digest,
                        )  # fmt: skip
                    self._summaries[(account, currency)] = trace
                    changed[(account, currency)] = trace
        return changed

    def holding(self, holding: Holding) -> HoldingTrace | None:
        """The current trace of one holding."""
        account, currency = holding
        allocation = self._allocations.get(account)
        if allocation is None or currency not in allocation.arrivals:
            return None
        return summarise(
            account, currency, allocation.arrivals[currency], allocation.moved_on.get(currency, 0),
            allocation.hop, allocation.hub,
        )  # fmt: skip

    def holdings(self) -> dict[Holding, HoldingTrace]:
        return {
            (account, currency): trace
            for account, allocation in self._allocations.items()
            for currency in allocation.arrivals
            if (trace := self.holding((account, currency))) is not None
        }

    def _allocate(self, account: AccountKey) -> list[AccountKey]:
        """Recompute one account; returns the receiving accounts whose content changed."""
        settings, transfers, contents = self.settings, self._transfers, self._content
        inbound = sorted(
            (contents[flow][0][2][-1][4], flow[0], contents[flow]) for flow in self._tainted_in.get(account, ())
        )
        named_out = self._named_out.get(account)
        old = self._allocations.get(account)
        if not inbound and not named_out:
            self._allocations.pop(account, None)
            return self._send(account, old.sent if old is not None else {}, {})

        first_ms = inbound[0][0] if inbound else UNREACHED
        hub = self._hub(account, first_ms)
        outbound: list[tuple[int, str, Record]] = []
        for txn_id in transfers.outgoing.get(account, ()):
            record = transfers.get(txn_id)
            if record is None or record[2] == account:
                continue  # a self-transfer moves nothing
            if record[0] >= first_ms or txn_id in self._named:
                outbound.append((record[0], txn_id, record))
        outbound.sort(key=lambda o: (o[0], o[1]))

        allocation = _Allocation(UNREACHED, hub, {}, {}, {})
        queues: dict[str, list[_Queued]] = {}  # currency -> lots in arrival order
        heads: dict[str, int] = {}
        i = 0
        for at_ms, txn_id, (_, _, target, amount, currency) in outbound:
            while i < len(inbound) and (inbound[i][0], inbound[i][1]) < (at_ms, txn_id):
                arrived_ms, _, lots = inbound[i]
                i += 1
                self._arrive(allocation, queues, arrived_ms, lots)
            drawn = [] if hub else _draw(queues, heads, currency, amount, at_ms, settings.trace_window_ms)
            taken = sum(lot[0] for lot in drawn)
            if taken:
                allocation.moved_on[currency] = allocation.moved_on.get(currency, 0) + taken
            named = self._named.get(txn_id)
            if named is not None:
                step: Step = (txn_id, 0, account, target, at_ms, currency, amount)
                pieces = [(part, reports | named, (*path, step)) for part, reports, path in drawn]
                if amount > taken:
                    pieces.append((amount - taken, named, (step,)))
                allocation.sent[txn_id] = tuple(pieces)
            elif drawn and allocation.hop < settings.max_hops:
                step = (txn_id, allocation.hop + 1, account, target, at_ms, currency, amount)
                allocation.sent[txn_id] = tuple((part, reports, (*path, step)) for part, reports, path in drawn)
        for arrived_ms, _, lots in inbound[i:]:
            self._arrive(allocation, queues, arrived_ms, lots)
        if allocation.arrivals or allocation.sent:
            self._allocations[account] = allocation
        else:
            self._allocations.pop(account, None)
        return self._send(account, old.sent if old is not None else {}, allocation.sent)

    @staticmethod
    def _arrive(
        allocation: _Allocation, queues: dict[str, list[_Queued]], arrived_ms: int, lots: tuple[Lot, ...]
    ) -> None:
        path = lots[0][2]
        currency, hop = path[-1][5], path[-1][1]
        allocation.hop = min(allocation.hop, hop)
        arrivals = allocation.arrivals.setdefault(currency, [])
        queue = queues.setdefault(currency, [])
        for lot in lots:
            arrivals.append((arrived_ms, lot))
            queue.append(_Queued(lot[0], arrived_ms, lot[1], lot[2]))

    def _send(
        self, account: AccountKey, old: Mapping[str, tuple[Lot, ...]], new: Mapping[str, tuple[Lot, ...]]
    ) -> list[AccountKey]:
        """Publish changed outflow contents to their receiving accounts; returns who must recompute."""
        changed = []
        for txn_id in old.keys() | new.keys():
            before, after = old.get(txn_id), new.get(txn_id)
            if before == after:
                continue
            flow = (txn_id, account)
            if before is not None:
                del self._content[flow]
                target = before[0][2][-1][3]
                tainted_in = self._tainted_in[target]
                tainted_in.discard(flow)
                if not tainted_in:
                    del self._tainted_in[target]
                changed.append(target)
            if after is not None:
                self._content[flow] = after
                target = after[0][2][-1][3]
                self._tainted_in.setdefault(target, set()).add(flow)
                changed.append(target)
        return changed

    def _hub(self, account: AccountKey, first_ms: int) -> str | None:
        """Why the account is a hub, or None: listed, or enough counterparties within the window of the taint.

        Reported transfers are not counted: many victims paying one mule make it a collection account, not a hub.
        """
        settings = self.settings
        if settings.listed_hub(account):
            return hub_reason(True, 0)
        if first_ms == UNREACHED:
            return None
        low, high = first_ms - settings.trace_window_ms, first_ms + settings.trace_window_ms
        transfers = self._transfers
        parties: set[AccountKey] = set()
        for txn_id in chain(transfers.outgoing.get(account, ()), transfers.incoming.get(account, ())):
            record = transfers.get(txn_id)
            if record is None or not low <= record[0] <= high or txn_id in self._named:
                continue  # victims paying a collection account do not make it a hub
            other = record[2] if record[1] == account else record[1]
            if other != account:
                parties.add(other)
                if len(parties) >= settings.hub_counterparties:
                    return hub_reason(False, settings.hub_counterparties)
        return None

    # -- retention ---------------------------------------------------------------------------------

    def evict(self) -> int:
        """Forget bank transfers older than the history retention, on the feed's own clock; returns how many went.

        Transfers touching an account the trail reaches stay: they are its evidence. A transfer
        older than the cutoff is not indexed again if it is redelivered, so eviction never
        changes a later trace.
        """
        cutoff = self.watermark_ms - self.settings.history_retention_ms
        if cutoff <= self.forgotten_before_ms:
            return 0
        self.forgotten_before_ms = cutoff
        transfers, traced = self._transfers, self._allocations
        gone = [
            txn_id
            for txn_id, record in transfers.feed.items()
            if record[0] < cutoff and record[1] not in traced and record[2] not in traced and txn_id not in self._named
        ]
        touched: set[AccountKey] = set()
        for txn_id in gone:
            _, source, target, _, _ = transfers.feed.pop(txn_id)
            touched.update((source, target))
        forgotten = set(gone)
        for index in (transfers.outgoing, transfers.incoming):
            for account in touched:
                kept = [txn_id for txn_id in index.get(account, ()) if txn_id not in forgotten]
                if kept:
                    index[account] = kept
                else:
                    index.pop(account, None)
        return len(gone)


def _draw(
    queues: dict[str, list[_Queued]], heads: dict[str, int], currency: str, amount: int, at_ms: int, window_ms: int
) -> list[Lot]:
    """Take up to ``amount`` from the currency's lots, oldest first, skipping lots older than the window."""
    queue = queues.get(currency)
    if not queue:
        return []
    head = heads.get(currency, 0)
    # Lots used up, or past the window for this outflow, are past it for every later one too.
    while head < len(queue) and (queue[head].left == 0 or at_ms - queue[head].arrived_ms > window_ms):
        head += 1
    heads[currency] = head
    drawn: list[Lot] = []
    left = amount
    for index in range(head, len(queue)):
        if left == 0:
            break
        entry = queue[index]
        if entry.left == 0:
            continue
        taken = min(left, entry.left)
        entry.left -= taken
        left -= taken
        drawn.append((taken, entry.reports, entry.path))
    return drawn


def _claims(report: Report) -> dict[str, Transfer]:
    """The transfers a report names, by txn_id; a txn_id named twice counts once, as first written."""
    claims: dict[str, Transfer] = {}
    for sent in report.transfers:
        claims.setdefault(sent.txn_id, sent)
    return claims


def _same_claims(a: Report, b: Report) -> bool:
    return a.transfers == b.transfers

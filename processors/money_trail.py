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

The state is split the way a consumer group would split it across workers:
``TransferResolver`` partitions keyed by txn_id decide each transfer's one record
(the feed's, else a report's copy) and tell the accounts involved; ``AccountTrail``
partitions keyed by account allocate tainted money and send each changed outflow
content to the receiving account's partition. ``MoneyTrail`` runs them all in one
process and delivers their messages.
"""

from __future__ import annotations

import hashlib
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Protocol, cast

from processors.records import CASH, AccountKey, Report, Transfer, account_label
from processors.transfer_store import AccountTransfers, Direction, FeedStore, MemoryStores, Record, TransferStores

Holding = tuple[AccountKey, str]  # where a traced amount sits: (account, currency)
# One transfer on a lot's path: (txn_id, hop, source, target, at_ms, currency, amount). Hop 0 = a reported transfer.
Step = tuple[str, int, AccountKey, AccountKey, int, str, int]
# A piece of tainted money: (amount, the reports it belongs to, the transfers it took to get here).
Lot = tuple[int, frozenset[str], tuple[Step, ...]]
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
    """One account's computed state: what reached it, what it sent on, and the contents of its outflows.

    It also keeps where the allocation stopped (the lots' queues, the last transfer taken in order,
    the counterparties counted towards a hub), so a transfer later than everything it has seen is
    allocated on from there instead of re-reading the account's history.
    """

    hop: int
    hub: str | None
    arrivals: dict[str, list[tuple[int, Lot]]]  # currency -> (arrival time, lot)
    moved_on: dict[str, int]
    sent: dict[str, tuple[Lot, ...]]  # txn_id -> content
    first_ms: int = UNREACHED  # the first tainted arrival
    queues: dict[str, list[_Queued]] = field(default_factory=dict)  # currency -> lots in arrival order
    heads: dict[str, int] = field(default_factory=dict)
    frontier: tuple[int, str] = (-sys.maxsize, "")  # the latest (at_ms, txn_id) taken into the allocation
    parties: set[AccountKey] = field(default_factory=set)  # counterparties within the hub window (not a hub)

    def core(self) -> tuple[object, ...]:
        return (self.hop, self.hub, self.arrivals, self.moved_on)


# What a resolver tells an account's partition about one transfer out of it or into it: (account, txn_id,
# record or None to take it back, the reports naming it, True for a feed record the account has not been told of).
Told = tuple[AccountKey, str, "Record | None", frozenset[str], bool]
FlowUpdate = tuple[AccountKey, Flow, "tuple[Lot, ...] | None"]  # (target, (txn_id, source), content)
NOBODY: frozenset[str] = frozenset()


def partition_of(key: str, partitions: int) -> int:
    """Stable across processes (unlike ``hash``): every worker routes a key to the same partition."""
    return 0 if partitions == 1 else zlib.crc32(key.encode()) % partitions


class TransferResolver:
    """One record per txn_id, for the txn_ids of one partition: the bank feed's, else the lowest report's copy.

    It tells the source account's partition and the target account's (``Told`` messages) whenever
    the record or the reports naming it change, and takes a record back from an account it no
    longer involves. Only the first delivery of an unclaimed feed record is marked new, so a
    traced account allocates it on from where its allocation stopped (one sent again after a crash
    is no later than that, and recomputes the account instead); the account's copy is kept by txn_id.
    """

    def __init__(self, history_retention_ms: int, feed: FeedStore, state: TrailPartition | None = None) -> None:
        self._retention_ms = history_retention_ms
        self.feed = feed
        self._copies: dict[str, dict[str, Record]] = {}  # txn_id -> report_id -> record
        self._told: dict[str, tuple[Record, frozenset[str]]] = {}  # what the accounts were last told (claimed only)
        self._log: TracedLog | None = None
        if state is not None:
            self._copies, self._told, self._log = state.copies, state.told, state.log

    def export(self, state: TrailPartition) -> None:
        state.copies, state.told = self._copies, self._told

    def add_feed(self, txn_id: str, record: Record) -> tuple[list[Told], list[Told]] | None:
        """A bank feed record; None if it changes nothing (a redelivery, or older than the evicted history)."""
        feed = self.feed
        if record[0] < feed.forgotten_before_ms or feed.get(txn_id) is not None:
            return None
        if record[0] > feed.watermark_ms:
            feed.watermark_ms = record[0]
        if txn_id not in self._copies:  # the common case: nobody claims it
            feed.put(txn_id, record)
            return [(record[1], txn_id, record, NOBODY, True)], [(record[2], txn_id, record, NOBODY, True)]
        return self._settle(txn_id, lambda: feed.put(txn_id, record))

    def claim(self, report_id: str, txn_id: str, record: Record | None) -> tuple[list[Told], list[Told]]:
        """A report says ``txn_id`` carried its money (or, with None, no longer says so)."""

        def apply() -> None:
            copies = self._copies.setdefault(txn_id, {})
            if record is None:
                copies.pop(report_id, None)
            else:
                copies[report_id] = record
            if not copies:
                del self._copies[txn_id]

        return self._settle(txn_id, apply)

    def _current(self, txn_id: str) -> tuple[Record, frozenset[str]] | None:
        copies = self._copies.get(txn_id)
        record = self.feed.get(txn_id)
        if record is None and copies:
            record = copies[min(copies)]
        return None if record is None else (record, frozenset(copies or ()))

    def _settle(self, txn_id: str, change: Callable[[], None]) -> tuple[list[Told], list[Told]]:
        before = self._told.get(txn_id)
        if before is None:
            fed = self.feed.get(txn_id)
            before = None if fed is None else (fed, NOBODY)
        change()
        after = self._current(txn_id)
        if after is None or not after[1]:
            self._told.pop(txn_id, None)
        else:
            self._told[txn_id] = after
        if self._log is not None:
            self._log.copies(txn_id, self._copies.get(txn_id))
            self._log.told(txn_id, self._told.get(txn_id))
        outgoing: list[Told] = []
        incoming: list[Told] = []
        if before == after:
            return outgoing, incoming
        if before is not None and (after is None or before[0][1] != after[0][1]):
            outgoing.append((before[0][1], txn_id, None, NOBODY, False))
        if before is not None and (after is None or before[0][2] != after[0][2]):
            incoming.append((before[0][2], txn_id, None, NOBODY, False))
        if after is not None:
            # Never "new" here: the resolver may have forgotten (evicted) a record the account still keeps.
            record, named = after
            outgoing.append((record[1], txn_id, record, named, False))
            incoming.append((record[2], txn_id, record, named, False))
        return outgoing, incoming

    def evict(self) -> int:
        """Forget unclaimed feed records older than the history retention, on this partition's feed clock.

        The accounts' partitions decide for themselves what they keep as evidence.
        """
        feed = self.feed
        cutoff = feed.watermark_ms - self._retention_ms
        if cutoff <= feed.forgotten_before_ms:
            return 0
        feed.forgotten_before_ms = cutoff
        return feed.evict(cutoff, self._copies.__contains__)


class AccountTrail:
    """The accounts of one partition: their transfers, the tainted money that reached them, and its allocation."""

    def __init__(
        self,
        settings: TraceSettings,
        outgoing: AccountTransfers,
        incoming: AccountTransfers,
        state: TrailPartition | None = None,
    ) -> None:
        self.settings = settings
        self._outgoing = outgoing
        self._incoming = incoming
        # txn_id -> (source, reports naming it), for the reported transfers out of here
        self._named: dict[str, tuple[AccountKey, frozenset[str]]] = {}
        self._named_out: dict[AccountKey, set[str]] = {}
        # Tainted money arriving, per receiving account: (txn_id, source) -> content. The source is part
        # of the key because a transfer's record can move to another source before both settle.
        self._tainted_in: dict[AccountKey, dict[Flow, tuple[Lot, ...]]] = {}
        self._allocations: dict[AccountKey, _Allocation] = {}
        self._summaries: dict[Holding, HoldingTrace] = {}  # the last trace returned per holding
        self._dirty: set[AccountKey] = set()  # to recompute from their history
        # New feed transfers of traced accounts, to allocate on from where they stopped (True: out of the account).
        self._appended: dict[AccountKey, list[tuple[Record, bool]]] = {}
        self._before: dict[AccountKey, _Allocation | None] = {}  # allocations as the last ``changes`` saw them
        self._log: TracedLog | None = None
        if state is not None:
            self._named = dict(state.named)
            for txn_id, (source, _) in self._named.items():
                self._named_out.setdefault(source, set()).add(txn_id)
            self._tainted_in, self._log = state.tainted_in, state.log

    def transfers(self, direction: Direction) -> AccountTransfers:
        return self._outgoing if direction == "out" else self._incoming

    def export(self, state: TrailPartition) -> None:
        state.named = dict(self._named)
        state.tainted_in = self._tainted_in

    def recompute_all(self) -> None:
        """Recompute every traced account at the next ``settle`` (a partition just adopted)."""
        self._dirty.update(self._tainted_in.keys() | self._named_out.keys())

    def forget_flows(self, sent_from: Callable[[AccountKey], bool]) -> None:
        """Drop the tainted money arriving from the accounts ``sent_from`` names; their partition sends it again."""
        for target, arriving in list(self._tainted_in.items()):
            gone = [flow for flow in arriving if sent_from(flow[1])]
            for flow in gone:
                del arriving[flow]
                if self._log is not None:
                    self._log.arriving(target, flow, None)
            if gone:
                self._dirty.add(target)
                if not arriving:
                    del self._tainted_in[target]

    def outgoing(
        self, source: AccountKey, txn_id: str, record: Record | None, named: frozenset[str], new: bool
    ) -> None:
        """A transfer out of ``source``: its record (None: not out of here any more) and the reports naming it."""
        self._outgoing.put(source, txn_id, _marked(record, named), new)
        known = self._named.get(txn_id)
        if known is not None and known[0] != source and record is not None:
            # A transfer has one record, so it is no longer out of the account named before. A resolver takes
            # that one back first, but one replaying after a crash, in another order, may never send the take-back.
            self._outgoing.put(known[0], txn_id, None, False)
            self._unname(txn_id)
            known = None
        if named:
            self._named[txn_id] = (source, named)
            self._named_out.setdefault(source, set()).add(txn_id)
            self._dirty.add(source)
            if self._log is not None:
                self._log.named(txn_id, (source, named))
        elif known is not None and known[0] == source:
            self._unname(txn_id)
        elif source in self._allocations:
            self._touch(source, record, new, out=True)

    def _unname(self, txn_id: str) -> None:
        source, _ = self._named.pop(txn_id)
        _discard(self._named_out, source, txn_id)
        self._dirty.add(source)
        if self._log is not None:
            self._log.named(txn_id, None)

    def incoming(
        self, target: AccountKey, txn_id: str, record: Record | None, named: frozenset[str], new: bool
    ) -> None:
        """A transfer into ``target``: it counts towards the target's counterparties (hubs)."""
        self._incoming.put(target, txn_id, _marked(record, named), new)
        if target in self._allocations:
            self._touch(target, record, new and not named, out=False)

    def _touch(self, account: AccountKey, record: Record | None, new: bool, out: bool) -> None:
        """A traced account's transfers changed: a new one is allocated on, anything else recomputes it."""
        if new and record is not None and account not in self._dirty:
            self._appended.setdefault(account, []).append((record, out))
        else:
            self._dirty.add(account)

    def flow(self, target: AccountKey, flow: Flow, content: tuple[Lot, ...] | None) -> None:
        arriving = self._tainted_in.get(target)
        if content is None:
            if arriving is not None and arriving.pop(flow, None) is not None:
                if not arriving:
                    del self._tainted_in[target]
                self._dirty.add(target)
                if self._log is not None:
                    self._log.arriving(target, flow, None)
        else:
            if arriving is None:
                arriving = self._tainted_in[target] = {}
            if arriving.get(flow) != content:
                arriving[flow] = content
                self._dirty.add(target)
                if self._log is not None:
                    self._log.arriving(target, flow, content)

    def settle(self) -> list[FlowUpdate]:
        """Recompute every account marked since the last call; returns the outflow contents that changed."""
        updates: list[FlowUpdate] = []
        wave, self._dirty = self._dirty, set()
        appended, self._appended = self._appended, {}
        for account in sorted(wave | appended.keys()):
            if account not in self._before:
                self._before[account] = self._allocations.get(account)
            extended = None if account in wave else self._extend(account, appended[account])
            updates.extend(self._allocate(account) if extended is None else extended)
        return updates

    @property
    def unsettled(self) -> bool:
        return bool(self._dirty or self._appended)

    def changes(self) -> dict[Holding, HoldingTrace | None]:
        """Every holding whose trace changed since the last call, with None for holdings no longer reached."""
        changed: dict[Holding, HoldingTrace | None] = {}
        before, self._before = self._before, {}
        for account, old in before.items():
            new = self._allocations.get(account)
            if old is not None and new is not None and old.core() == new.core():
                continue
            if old is not None:
                for currency in old.arrivals:
                    changed[(account, currency)] = None
                    known = self._summaries.pop((account, currency), None)
                    if known is not None and new is not None and old.arrivals[currency] == new.arrivals.get(currency):
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
        account, currency = holding
        allocation = self._allocations.get(account)
        if allocation is None or currency not in allocation.arrivals:
            return None
        arrivals, moved_on = allocation.arrivals[currency], allocation.moved_on.get(currency, 0)
        return summarise(account, currency, arrivals, moved_on, allocation.hop, allocation.hub)

    def holdings(self) -> dict[Holding, HoldingTrace]:
        return {
            (account, currency): trace
            for account, allocation in self._allocations.items()
            for currency in allocation.arrivals
            if (trace := self.holding((account, currency))) is not None
        }

    def _allocate(self, account: AccountKey) -> list[FlowUpdate]:
        """Recompute one account; returns the outflow contents that changed."""
        inbound = sorted(
            (content[0][2][-1][4], flow[0], content) for flow, content in self._tainted_in.get(account, {}).items()
        )
        named_out = self._named_out.get(account)
        old = self._allocations.get(account)
        if not inbound and not named_out:
            self._allocations.pop(account, None)
            return _updates(account, old.sent if old is not None else {}, {})

        first_ms = inbound[0][0] if inbound else UNREACHED
        hub, parties = self._hub(account, first_ms)
        named_by = self._named
        if hub is None:
            outbound = sorted(
                (
                    record
                    for record in self._outgoing.scan(account)
                    if record[2] != account  # a self-transfer moves nothing
                    and (record[0] >= first_ms or record[5] in named_by)
                ),
                key=_in_order,
            )
        else:  # a hub's outflows draw nothing: only the reported ones matter, read one by one, not its millions
            found = (self._outgoing.record(account, txn_id) for txn_id in sorted(named_out or ()))
            outbound = sorted((r for r in found if r is not None and r[2] != account), key=_in_order)

        allocation = _Allocation(UNREACHED, hub, {}, {}, {}, first_ms, parties=parties)
        i = 0
        for record in outbound:
            at_ms, txn_id = record[0], record[5]
            while i < len(inbound) and (inbound[i][0], inbound[i][1]) < (at_ms, txn_id):
                arrived_ms, _, lots = inbound[i]
                i += 1
                _arrive(allocation, arrived_ms, lots)
            self._send(account, allocation, record)
        for arrived_ms, _, lots in inbound[i:]:
            _arrive(allocation, arrived_ms, lots)
        last_in = (inbound[-1][0], inbound[-1][1]) if inbound else allocation.frontier
        allocation.frontier = max(allocation.frontier, last_in)
        if allocation.arrivals or allocation.sent:
            self._allocations[account] = allocation
        else:
            self._allocations.pop(account, None)
        return _updates(account, old.sent if old is not None else {}, allocation.sent)

    def _send(self, account: AccountKey, allocation: _Allocation, record: Record) -> None:
        """One outflow, in order: it draws the oldest tainted lots (a hub's draws nothing) and carries them on."""
        at_ms, _, target, amount, currency, txn_id, _ = record
        allocation.frontier = (at_ms, txn_id)
        settings = self.settings
        drawn = (
            [] if allocation.hub
            else _draw(allocation.queues, allocation.heads, currency, amount, at_ms, settings.trace_window_ms)
        )  # fmt: skip
        taken = sum(lot[0] for lot in drawn)
        if taken:
            allocation.moved_on[currency] = allocation.moved_on.get(currency, 0) + taken
        if target[0] == CASH:
            return  # withdrawn: the money it drew has left the banking system
        known = self._named.get(txn_id)
        if known is not None:
            named = known[1]
            step: Step = (txn_id, 0, account, target, at_ms, currency, amount)
            pieces = [(part, reports | named, (*path, step)) for part, reports, path in drawn]
            if amount > taken:
                pieces.append((amount - taken, named, (step,)))
            allocation.sent[txn_id] = tuple(pieces)
        elif drawn and allocation.hop < settings.max_hops:
            step = (txn_id, allocation.hop + 1, account, target, at_ms, currency, amount)
            allocation.sent[txn_id] = tuple((part, reports, (*path, step)) for part, reports, path in drawn)

    def _extend(self, account: AccountKey, records: list[tuple[Record, bool]]) -> list[FlowUpdate] | None:
        """Allocate new, unreported feed transfers on from where the account's allocation stopped.

        None when that would not give what recomputing it does: a transfer out earlier than one
        already taken, or enough new counterparties to make the account a hub.
        """
        old = self._allocations.get(account)
        if old is None:
            return None
        if old.hub is not None or old.first_ms == UNREACHED:
            return []  # a hub's unreported transfers draw nothing and cannot unmake it; nor can an untainted account's
        allocation = _Allocation(
            old.hop, old.hub, old.arrivals, dict(old.moved_on), dict(old.sent), old.first_ms, old.queues, old.heads,
            old.frontier, old.parties,
        )  # fmt: skip
        window, enough = self.settings.trace_window_ms, self.settings.hub_counterparties
        for record, out in sorted(records, key=lambda item: _in_order(item[0])):
            other = record[2] if out else record[1]
            if other != account and other[0] != CASH and abs(record[0] - old.first_ms) <= window:
                allocation.parties.add(other)
                if len(allocation.parties) >= enough:
                    return None
            if not out or record[2] == account:
                continue  # money coming in untainted, or moving within the account
            if _in_order(record) <= allocation.frontier:
                return None
            self._send(account, allocation, record)
        self._allocations[account] = allocation
        return _updates(account, old.sent, allocation.sent)

    def _hub(self, account: AccountKey, first_ms: int) -> tuple[str | None, set[AccountKey]]:
        """Why the account is a hub, or None: listed, or enough counterparties within the window of the taint.

        Reported transfers are not counted: many victims paying one mule make it a collection account, not a hub.
        Also returns the counterparties counted, all of them when the account is not a hub.
        """
        settings = self.settings
        parties: set[AccountKey] = set()
        if settings.listed_hub(account):
            return hub_reason(True, 0), parties
        if first_ms == UNREACHED:
            return None, parties
        low, high = first_ms - settings.trace_window_ms, first_ms + settings.trace_window_ms
        for record in chain(self._outgoing.scan(account), self._incoming.scan(account)):
            if not low <= record[0] <= high or record[6]:
                continue  # victims paying a collection account do not make it a hub
            other = record[2] if record[1] == account else record[1]
            if other != account and other[0] != CASH:
                parties.add(other)
                if len(parties) >= settings.hub_counterparties:
                    return hub_reason(False, settings.hub_counterparties), parties
        return None, parties

    def evict(self, cutoff_ms: int) -> int:
        """Forget transfers older than ``cutoff_ms`` of accounts the trail does not reach."""

        def kept(account: AccountKey) -> bool:
            return account in self._allocations or account in self._named_out

        return self._outgoing.evict(cutoff_ms, kept) + self._incoming.evict(cutoff_ms, kept)


def _discard(index: dict[AccountKey, set[str]], account: AccountKey, txn_id: str) -> None:
    members = index.get(account)
    if members is not None:
        members.discard(txn_id)
        if not members:
            del index[account]


def _arrive(allocation: _Allocation, arrived_ms: int, lots: tuple[Lot, ...]) -> None:
    path = lots[0][2]
    currency, hop = path[-1][5], path[-1][1]
    allocation.hop = min(allocation.hop, hop)
    arrivals = allocation.arrivals.setdefault(currency, [])
    queue = allocation.queues.setdefault(currency, [])
    for lot in lots:
        arrivals.append((arrived_ms, lot))
        queue.append(_Queued(lot[0], arrived_ms, lot[1], lot[2]))


def _updates(
    account: AccountKey, old: Mapping[str, tuple[Lot, ...]], new: Mapping[str, tuple[Lot, ...]]
) -> list[FlowUpdate]:
    """The outflow contents that changed, addressed to the accounts receiving them."""
    updates: list[FlowUpdate] = []
    for txn_id in old.keys() | new.keys():
        before, after = old.get(txn_id), new.get(txn_id)
        if before == after:
            continue
        flow = (txn_id, account)
        if before is not None and (after is None or before[0][2][-1][3] != after[0][2][-1][3]):
            updates.append((before[0][2][-1][3], flow, None))
        if after is not None:
            updates.append((after[0][2][-1][3], flow, after))
    return updates


class Trail(Protocol):
    """What the case role needs of the trail: this process's ``MoneyTrail``, or a ``TrailView`` of other processes'."""

    @property
    def reports(self) -> dict[str, Report]: ...
    def __len__(self) -> int: ...
    def add_report(self, report: Report) -> bool: ...
    def forget_reports(self, report_ids: Iterable[str]) -> int: ...
    def add_transaction(self, transfer: Transfer) -> bool: ...
    def retrace(self) -> dict[Holding, HoldingTrace | None]: ...
    def drain_new_accounts(self) -> list[AccountKey]: ...
    def evict(self) -> int: ...
    def holding(self, holding: Holding) -> HoldingTrace | None: ...
    def holdings(self) -> dict[Holding, HoldingTrace]: ...


# What one trail partition sends another, and a report's claims send the resolvers, as a consumer group's
# workers send them through the broker. Each is a latest-value update for its key, so a redelivery is harmless.
FEED, CLAIM, OUT, IN, FLOW, RESET = "feed", "claim", "out", "in", "flow", "reset"
FeedMessage = tuple[str, str, Record]  # (FEED, txn_id, record)
ClaimMessage = tuple[str, str, str, "Record | None"]  # (CLAIM, report_id, txn_id, record or None to withdraw)
ToldMessage = tuple[str, AccountKey, str, "Record | None", frozenset[str], bool]  # (OUT or IN, *Told)
FlowMessage = tuple[str, AccountKey, Flow, "tuple[Lot, ...] | None"]  # (FLOW, *FlowUpdate)
ResetMessage = tuple[str, int]  # (RESET, partition): forget every outflow content its accounts sent before
Message = FeedMessage | ClaimMessage | ToldMessage | FlowMessage | ResetMessage


class TracedLog(Protocol):
    """Where a trail partition's traced state goes as it changes (a worker's store: its rows go to the changelog)."""

    def copies(self, txn_id: str, copies: Mapping[str, Record] | None) -> None: ...
    def told(self, txn_id: str, told: tuple[Record, frozenset[str]] | None) -> None: ...
    def named(self, txn_id: str, named: tuple[AccountKey, frozenset[str]] | None) -> None: ...
    def arriving(self, target: AccountKey, flow: Flow, content: tuple[Lot, ...] | None) -> None: ...


@dataclass(slots=True)
class TrailPartition:
    """Everything one trail partition knows, as it moves between workers (a handover) or is restored (a crash).

    The transfers are in the stores (on disk and in their changelog, in a worker); the rest is the
    state only traced cases have: report copies, reported transfers and the tainted money arriving,
    kept in ``log`` as well when the stores keep it. Allocations are not kept: they are recomputed
    from this when the partition is opened.
    """

    feed: FeedStore
    outgoing: AccountTransfers
    incoming: AccountTransfers
    copies: dict[str, dict[str, Record]] = field(default_factory=dict)
    told: dict[str, tuple[Record, frozenset[str]]] = field(default_factory=dict)
    named: dict[str, tuple[AccountKey, frozenset[str]]] = field(default_factory=dict)  # txn_id -> (source, reports)
    tainted_in: dict[AccountKey, dict[Flow, tuple[Lot, ...]]] = field(default_factory=dict)
    log: TracedLog | None = None


class MoneyTrail:
    """The trail's transfer resolvers and account partitions, the ones this process owns, with messages between them.

    ``partitions`` splits the state the way a consumer group splits it across workers: txn_ids
    to resolvers and accounts to account partitions by a stable hash. By default one process owns
    every partition and delivers every message itself, exactly once and in order per key. With
    ``owned``, messages for the other partitions collect in ``outbox`` for the caller to send, and
    ``receive`` takes the messages other processes sent to this one's partitions (in order per
    partition, as a Kafka partition keeps them; again or late is harmless).

    A message between two partitions owned here is delivered in process only once the receiving
    partition is ``local``: the caller says so when it has read that partition's messages to their
    end since this process last adopted a partition. Until then, an earlier owner's messages may
    still wait there, and one delivered in process would overtake them; it goes to the outbox.
    """

    def __init__(
        self,
        settings: TraceSettings,
        partitions: int = 1,
        stores: TransferStores | None = None,
        owned: Iterable[int] | None = None,
    ) -> None:
        self.settings = settings
        self.partitions = partitions
        self.stores = stores = MemoryStores() if stores is None else stores
        self.reports: dict[str, Report] = {}
        self.resolvers: dict[int, TransferResolver] = {}
        self.accounts: dict[int, AccountTrail] = {}
        for partition in range(partitions) if owned is None else owned:
            self._open(partition, self._stored(partition))
        self.outbox: dict[int, list[Message]] = {}
        self._local: set[int] = set(range(partitions)) if owned is None else set()
        self._resets: set[int] = set()
        self._interned: dict[AccountKey, AccountKey] = {}
        self._account_partitions: dict[AccountKey, int] = {}
        self._new_accounts: list[AccountKey] = []
        for account in stores.accounts():  # a restart with the transfers on disk: their accounts are known
            self.intern(account, remembered=True)

    def __len__(self) -> int:
        """Bank transfers indexed (in the partitions owned here)."""
        return sum(len(resolver.feed) for resolver in self.resolvers.values())

    def intern(self, account: AccountKey, remembered: bool = False) -> AccountKey:
        known = self._interned.get(account)
        if known is None:
            kind, institution, number = account
            known = (sys.intern(kind), sys.intern(institution), sys.intern(number))
            self._interned[known] = known
            self._new_accounts.append(known)
            if not remembered:
                self.stores.remember_account(known)
        return known

    def drain_new_accounts(self) -> list[AccountKey]:
        """Accounts seen for the first time since the last call (for payment-proxy links)."""
        drained, self._new_accounts = self._new_accounts, []
        return drained

    def partition_of_account(self, account: AccountKey) -> int:
        if self.partitions == 1:
            return 0  # not worth building the label
        partition = self._account_partitions.get(account)
        if partition is None:  # every transfer asks twice: the label and its hash are worth keeping
            partition = self._account_partitions[account] = partition_of(account_label(account), self.partitions)
        return partition

    def account_partition(self, account: AccountKey) -> AccountTrail | None:
        """The account's partition if messages to it are delivered in process, else None (they go to the outbox)."""
        if self.partitions == 1:
            return self.accounts.get(0) if self._local else None  # the worker's hot path: one partition
        partition = self.partition_of_account(account)
        return self.accounts[partition] if partition in self._local else None

    def deliver_locally(self, partition: int) -> None:
        """Messages to ``partition`` (owned here) may be delivered in process: its queue has been read to its end."""
        if partition in self.accounts:
            self._local.add(partition)

    def add_transaction(self, transfer: Transfer) -> bool:
        """Index a bank transfer; False for a redelivered ``txn_id`` or one older than the evicted history.

        A transfer for a resolver owned elsewhere goes to the outbox, and counts as new here.
        """
        txn_id = transfer.txn_id
        record = (transfer.at_ms, self.intern(transfer.source), self.intern(transfer.target), transfer.amount,
                  transfer.currency, txn_id, False)  # fmt: skip
        partition = partition_of(txn_id, self.partitions)
        if partition not in self._local:
            self._post(partition, (FEED, txn_id, record))
            return True
        resolver = self.resolvers[partition]
        told = resolver.add_feed(txn_id, record)
        if told is None:
            return False
        self._deliver(*told)
        return True

    def add_report(self, report: Report) -> bool:
        """Take a report, or the correction that replaces it; False if it changes nothing."""
        known = self.reports.get(report.report_id)
        self.reports[report.report_id] = report
        if known is not None and known.transfers == report.transfers:
            return False
        before = _claims(known) if known is not None else {}
        after = _claims(report)
        for txn_id in sorted(before.keys() | after.keys()):
            sent = after.get(txn_id)
            self._claim(report.report_id, txn_id, None if sent is None else self._copy(sent))
        return True

    def forget_reports(self, report_ids: Iterable[str]) -> int:
        """Take expired reports out of the trail; returns how many it held.

        Their claims are withdrawn as a correction to no transfers would withdraw them, so the
        money only they traced is no longer followed, the accounts it reached are no longer kept
        as evidence (their transfers become evictable) and a later report reaching the same
        accounts is traced as if they had never come: the same trace a restart rebuilds, since a
        replay refuses expired reports.
        """
        forgotten = 0
        for report_id in report_ids:
            report = self.reports.pop(report_id, None)
            if report is None:
                continue
            forgotten += 1
            for txn_id in sorted(_claims(report)):
                self._claim(report_id, txn_id, None)
        return forgotten

    def _claim(self, report_id: str, txn_id: str, record: Record | None) -> None:
        partition = partition_of(txn_id, self.partitions)
        if partition in self._local:
            self._deliver(*self.resolvers[partition].claim(report_id, txn_id, record))
        else:
            self._post(partition, (CLAIM, report_id, txn_id, record))

    def _copy(self, sent: Transfer) -> Record:
        return (sent.at_ms, self.intern(sent.source), self.intern(sent.target), sent.amount, sent.currency,
                sent.txn_id, False)  # fmt: skip

    def _post(self, partition: int, message: Message) -> None:
        outbox = self.outbox.get(partition)
        if outbox is None:
            self.outbox[partition] = [message]
        else:
            outbox.append(message)

    def take_outbox(self) -> dict[int, list[Message]]:
        """The messages for partitions owned elsewhere since the last call, by partition, in the order to send them."""
        taken, self.outbox = self.outbox, {}
        return taken

    def _deliver(self, outgoing: list[Told], incoming: list[Told]) -> None:
        for told in outgoing:
            partition = self.account_partition(told[0])
            if partition is None:
                self._post(self.partition_of_account(told[0]), (OUT, *told))
            else:
                partition.outgoing(*told)
        for told in incoming:
            partition = self.account_partition(told[0])
            if partition is None:
                self._post(self.partition_of_account(told[0]), (IN, *told))
            else:
                partition.incoming(*told)

    def receive(self, partition: int, messages: Iterable[Message]) -> None:
        """Messages sent to one partition owned here, in the order they were sent."""
        resolver, accounts = self.resolvers[partition], self.accounts[partition]
        for message in messages:
            kind = message[0]
            if kind == FEED:
                _, txn_id, record = cast(FeedMessage, message)
                told = resolver.add_feed(txn_id, self._interned_record(record))
                if told is not None:
                    self._deliver(*told)
            elif kind == CLAIM:
                _, report_id, txn_id, claimed = cast(ClaimMessage, message)
                claimed = None if claimed is None else self._interned_record(claimed)
                self._deliver(*resolver.claim(report_id, txn_id, claimed))
            elif kind in (OUT, IN):
                _, account, txn_id, told_record, named, new = cast(ToldMessage, message)
                told_record = None if told_record is None else self._interned_record(told_record)
                tell = accounts.outgoing if kind == OUT else accounts.incoming
                tell(self.intern(account), txn_id, told_record, named, new)
            elif kind == FLOW:
                _, target, flow, content = cast(FlowMessage, message)
                accounts.flow(self.intern(target), flow, content)
            elif kind == RESET:
                accounts.forget_flows(self._in_partition(cast(ResetMessage, message)[1]))
            else:
                raise ValueError(f"unknown trail message kind {kind!r}")

    def _in_partition(self, partition: int) -> Callable[[AccountKey], bool]:
        return lambda account: self.partition_of_account(account) == partition

    def _interned_record(self, record: Record) -> Record:
        at_ms, source, target, amount, currency, txn_id, named = record
        return (at_ms, self.intern(source), self.intern(target), amount, currency, txn_id, named)

    def retrace(self) -> dict[Holding, HoldingTrace | None]:
        """Settle every partition owned here, passing changed outflow contents between them until nothing changes.

        Returns every holding whose trace changed, with None for holdings no longer reached. Accounts
        are recomputed in waves, so one fed by many others (a cash-out) is recomputed once per wave.
        Contents for partitions owned elsewhere go to the outbox.
        """
        owned = self.accounts.values()
        while any(partition.unsettled for partition in owned):
            updates = [update for partition in owned for update in partition.settle()]
            for target, flow, content in updates:
                partition = self.account_partition(target)
                if partition is None:
                    self._post(self.partition_of_account(target), (FLOW, target, flow, content))
                else:
                    partition.flow(target, flow, content)
        changed: dict[Holding, HoldingTrace | None] = {}
        for partition in owned:
            changed.update(partition.changes())
        return changed

    def take_resets(self) -> set[int]:
        """Partitions adopted since the last call: whoever follows the holdings drops every one it had from them
        before applying the next ``retrace``, which returns all of them (a crashed owner may have sent some the
        adopted state never reaches again)."""
        taken, self._resets = self._resets, set()
        return taken

    def _stored(self, partition: int) -> TrailPartition:
        """A partition as the stores keep it: its transfers, and its traced state if they keep that too."""
        stores = self.stores
        state = TrailPartition(stores.feed(partition), stores.transfers(partition, "out"),
                               stores.transfers(partition, "in"))  # fmt: skip
        traced = stores.traced(partition)
        if traced is not None:
            state.copies, state.told, state.named, state.tainted_in = traced.load()
            state.log = traced
        return state

    def partition_state(self, partition: int) -> TrailPartition:
        """What a partition owned here knows (live, not a copy): what a checkpoint keeps."""
        resolver, trail = self.resolvers[partition], self.accounts[partition]
        state = TrailPartition(resolver.feed, trail.transfers("out"), trail.transfers("in"))
        resolver.export(state)
        trail.export(state)
        return state

    def release(self, partition: int) -> TrailPartition:
        """Stop owning a partition; returns what it knew, for the process that adopts it."""
        state = self.partition_state(partition)
        del self.resolvers[partition], self.accounts[partition]
        self._local.discard(partition)
        return state

    def adopt(self, partition: int, state: TrailPartition | None = None) -> None:
        """Own a partition from what it knew at its owner's last checkpoint (a handover, or a crash).

        Its owner may have sent outflow contents after that checkpoint which replaying its input will
        not send again, so every partition is told to forget the contents its accounts ever sent, and
        gets the adopted state's own at the next ``retrace``; the holdings are reset likewise. No
        partition here is ``local`` until the caller has read its messages to their end again: the
        earlier owner's may wait there. Without ``state``, the partition is read from the stores (restored
        from its changelog first, in a worker).
        """
        self._open(partition, self._stored(partition) if state is None else state)
        self._local.clear()
        for other in range(self.partitions):
            self._post(other, (RESET, partition))
        self._resets.add(partition)

    def _open(self, partition: int, state: TrailPartition) -> None:
        settings = self.settings
        self.resolvers[partition] = TransferResolver(settings.history_retention_ms, state.feed, state)
        self.accounts[partition] = trail = AccountTrail(settings, state.outgoing, state.incoming, state)
        trail.recompute_all()  # allocations are not kept: they follow from the state

    def holding(self, holding: Holding) -> HoldingTrace | None:
        """The current trace of one holding (of a partition owned here)."""
        partition = self.accounts.get(self.partition_of_account(holding[0]))
        return None if partition is None else partition.holding(holding)

    def holdings(self) -> dict[Holding, HoldingTrace]:
        return {
            holding: trace for partition in self.accounts.values() for holding, trace in partition.holdings().items()
        }

    def evict(self) -> int:
        """Forget bank transfers older than the history retention, on the feed's own clock; returns how many went.

        Transfers of accounts the trail reaches stay: they are its evidence. A transfer older than what
        was evicted is not indexed again if it is redelivered, so eviction never changes a later trace.
        """
        if not self.resolvers:
            return 0
        gone = sum(resolver.evict() for resolver in self.resolvers.values())
        cutoff = max(resolver.feed.forgotten_before_ms for resolver in self.resolvers.values())
        for partition in self.accounts.values():
            partition.evict(cutoff)
        return gone


def _in_order(record: Record) -> tuple[int, str]:
    return (record[0], record[5])


def _marked(record: Record | None, named: frozenset[str]) -> Record | None:
    """The record with its ``named`` flag set: named transfers do not count towards a hub."""
    if record is None or record[6] == bool(named):
        return record
    return (*record[:6], bool(named))


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

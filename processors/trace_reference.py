"""The reference oracle: the money-trail rules as one slow, obviously correct function.

``trace_reference`` traces a complete set of reports and bank transfers from
scratch, in event-time order. It is the specification: the incremental engine in
``processors.money_trail`` must reach exactly the same holdings for the same
inputs in any arrival order, and property tests hold it to that.

The rules, as an investigator can check them:

1. **One record per transfer.** Transfers are identified by ``txn_id`` and counted
   once, whether the bank feed, a report, or both name them. When the bank feed
   has the transfer, its record is the truth (``executed_at``, accounts, amount);
   a victim's ``sent_at`` and amounts only fill in for transfers the feed lacks
   (the copy in the lowest ``report_id`` naming it). A redelivered feed record is
   ignored (the first delivery wins).
2. **Self-transfers move nothing.** A transfer from an account to itself is not a
   hop and is ignored.
3. **Order.** Transfers are taken in ``(at, txn_id)`` order. A transfer only sees
   money that arrived by transfers earlier in that order.
4. **Reported transfers are tainted in full.** A transfer named by reports R puts
   its whole amount at its target, at hop 0, as money of R. The part it draws from
   tainted money already at its source (rule 5) keeps those reports as well; only
   the rest is new taint. So a victim who is also a mule, or a transfer named by
   two reports, never counts the same money twice.
5. **FIFO, within the window.** A transfer out of an account draws on the
   account's tainted lots of its own currency, oldest first, up to its amount,
   skipping lots that arrived more than ``trace_window`` before it. Tainted money
   leaves before any clean money (mules rarely hold their own), which never
   attributes more than arrived. Lots past the window are treated as still held.
6. **Hop distance** is the account's distance from the victims: the smallest hop
   of the money that reached it so far (0 for the target of a reported transfer).
   Money drawn from an account at hop h travels on at hop h + 1 if h is below
   ``max_hops``; at ``max_hops`` it counts as moved on but is not followed.
7. **Hubs.** An account is a hub when the settings list it, or when it has at
   least ``hub_counterparties`` distinct counterparties (senders to it or
   recipients from it) among transfers within ``trace_window`` either side of the
   first tainted arrival there. Reported transfers are not counted: many victims
   paying one mule make it a collection account, not a hub. A hub's outflows draw nothing: the trail stops,
   the hub holds all tainted money it received (as the liable institution), and
   its customers are left alone. FIFO through an omnibus account would hand the
   taint to unrelated customers.
8. **Cash leaves.** A transfer to a ``cash`` account (an ATM or counter
   withdrawal the bank reports) draws from its source like any outflow (rule 5),
   but the money has left the banking system: nothing arrives, nothing is held,
   and the trail ends there. Withdrawal points are not counterparties (rule 7).
9. **Holdings.** Per account and currency: ``received`` is the tainted money that
   arrived (money that came back round a loop counts each time it arrived),
   ``moved_on`` what its outflows drew, the hold ``received - moved_on``; its
   reports are every report whose money arrived; its trail is every transfer on the
   path of money that arrived, with how much of that money it carried (never more
   than the transfer's amount).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from processors.money_trail import UNREACHED, Holding, HoldingTrace, TraceSettings, TrailStep, hub_reason
from processors.records import CASH, AccountKey, Report, Transfer

_Path = tuple[tuple[str, int], ...]  # the (txn_id, hop) of every transfer the money took


@dataclass
class _Lot:
    amount: int
    arrived_ms: int
    currency: str
    reports: frozenset[str]
    path: _Path


def trace_reference(
    reports: Iterable[Report], transactions: Iterable[Transfer], settings: TraceSettings
) -> dict[Holding, HoldingTrace]:
    """Every holding the reports' money reached, traced from scratch in event-time order."""
    # Rule 1: one record per txn_id; the feed wins, else the lowest report's copy.
    records: dict[str, Transfer] = {}
    for transfer in transactions:
        records.setdefault(transfer.txn_id, transfer)
    named: dict[str, set[str]] = {}
    for report in sorted(reports, key=lambda r: r.report_id):
        for sent in report.transfers:
            named.setdefault(sent.txn_id, set()).add(report.report_id)
            records.setdefault(sent.txn_id, sent)
    # Rules 2 and 3.
    ordered = sorted((t for t in records.values() if t.source != t.target), key=lambda t: (t.at_ms, t.txn_id))

    lots: dict[AccountKey, list[_Lot]] = {}
    hop: dict[AccountKey, int] = {}
    first_arrival: dict[AccountKey, int] = {}
    hubs: dict[AccountKey, str | None] = {}
    arrived: dict[Holding, list[tuple[int, int, frozenset[str], _Path]]] = {}
    moved_on: dict[Holding, int] = {}

    def is_hub(account: AccountKey) -> str | None:
        if account not in hubs:
            if settings.listed_hub(account):
                hubs[account] = hub_reason(True, 0)
            elif account not in first_arrival:
                return None
            else:
                low = first_arrival[account] - settings.trace_window_ms
                high = first_arrival[account] + settings.trace_window_ms
                parties = {
                    t.target if t.source == account else t.source
                    for t in ordered
                    if account in (t.source, t.target) and low <= t.at_ms <= high and t.txn_id not in named
                }
                parties = {party for party in parties if party[0] != CASH}  # rule 8: ATMs are not counterparties
                big = len(parties) >= settings.hub_counterparties
                hubs[account] = hub_reason(False, settings.hub_counterparties) if big else None
        return hubs[account]

    window = settings.trace_window_ms
    for transfer in ordered:
        source, target, currency = transfer.source, transfer.target, transfer.currency
        # Rule 5 (and 7): draw FIFO from the source's lots in this currency, unless it is a hub.
        drawn: list[tuple[int, frozenset[str], _Path]] = []
        pieces: list[tuple[int, frozenset[str], _Path]]
        if is_hub(source) is None:
            left = transfer.amount
            for lot in lots.get(source, []):
                if left == 0:
                    break
                if lot.currency != currency or lot.amount == 0 or transfer.at_ms - lot.arrived_ms > window:
                    continue
                taken = min(left, lot.amount)
                lot.amount -= taken
                left -= taken
                drawn.append((taken, lot.reports, lot.path))
            taken_total = transfer.amount - left
            if taken_total:
                moved_on[(source, currency)] = moved_on.get((source, currency), 0) + taken_total
        if target[0] == CASH:
            continue  # rule 8: what it drew has left
        # Rules 4 and 6: what arrives at the target, and at which hop.
        reporters = frozenset(named.get(transfer.txn_id, ()))
        if reporters:
            step_hop = 0
            pieces = [(amount, lot_reports | reporters, path) for amount, lot_reports, path in drawn]
            rest = transfer.amount - sum(piece[0] for piece in drawn)
            if rest:
                pieces.append((rest, reporters, ()))
        elif drawn and hop[source] < settings.max_hops:
            step_hop = hop[source] + 1
            pieces = drawn
        else:
            continue
        hop[target] = min(hop.get(target, UNREACHED), step_hop)
        first_arrival.setdefault(target, transfer.at_ms)
        for amount, lot_reports, path in pieces:
            full_path = (*path, (transfer.txn_id, step_hop))
            lots.setdefault(target, []).append(_Lot(amount, transfer.at_ms, currency, lot_reports, full_path))
            arrived.setdefault((target, currency), []).append((transfer.at_ms, amount, lot_reports, full_path))

    # Rule 9.
    holdings: dict[Holding, HoldingTrace] = {}
    for (account, currency), arrivals in arrived.items():
        steps: dict[tuple[str, int], tuple[int, set[str]]] = {}
        for _, amount, lot_reports, path in arrivals:
            for step in path:
                total, step_reports = steps.get(step, (0, set()))
                steps[step] = (total + amount, step_reports | lot_reports)
        trail = []
        for (txn_id, step_hop), (total, step_reports) in steps.items():
            record = records[txn_id]
            trail.append(
                TrailStep(
                    txn_id,
                    tuple(sorted(step_reports)),
                    step_hop,
                    record.source,
                    record.target,
                    min(total, record.amount),
                    record.currency,
                    record.at_ms,
                )
            )
        trail.sort(key=lambda s: (s.at_ms, s.txn_id))
        holdings[(account, currency)] = HoldingTrace(
            account=account,
            currency=currency,
            received=sum(piece[1] for piece in arrivals),
            moved_on=moved_on.get((account, currency), 0),
            hop=hop[account],
            first_arrival_ms=min(piece[0] for piece in arrivals),
            last_arrival_ms=max(piece[0] for piece in arrivals),
            report_ids=tuple(sorted({report_id for piece in arrivals for report_id in piece[2]})),
            trail=tuple(trail),
            hub_reason=is_hub(account),
        )
    return holdings

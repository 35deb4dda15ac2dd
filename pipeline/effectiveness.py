"""Interception effectiveness: what the first freeze orders after each report hold, against the ground truth.

For every report R, at its arrival T (event time), with the world's ledger as the truth:

- **reported**: what the victim paid;
- **reachable**: R's money still at gang accounts at T, in any currency, at what the victim lost.
  Money a merchant or the exchange was paid with, cash and on-chain withdrawals are gone;
- **frozen**: over the freeze orders the pipeline issued in answer to R (the first version of each
  order naming R), ``min(hold, the money of reported victims really sitting there)``, R's share of
  it pro rata (money is fungible: which reported victim a held baht belongs to is a convention).
  So frozen <= reachable <= reported, per report, whatever the orders say;
- **frozen once executed** (a lower bound): of that, what was still there, all the time, until the
  institution executed the order (``execute_delay`` of the scenario; some never do). The world does
  not react to orders, so money that left before the execution is counted as lost;
- **lost, by rule**: reachable money not frozen, put down to the first reason on its path: the trace
  stopped at a **hub**, the **hop limit**, the **window** (money that sat longer than ``trace_window``
  before moving on), a **currency change** (THB traded for USDT), **history retention** (the feed
  had forgotten a transfer the report needed); or to FIFO attribution of fungible money: **cash off
  the feed** (an earlier victim's money left in cash, which no feed shows, so the trace moved it on
  in place of this victim's), **mixed money** (the gang moved another reported victim's money, the
  trace this one's), **unreported money** (the same with money of a victim who had not reported, which
  the trace cannot know is stolen, so it draws reported money first); else **untraced**, a gap to
  investigate;
- **held under any order**: R's money under the latest hold at the accounts where it really is, right
  after R's first orders, whichever report the order names (same pro-rata share as frozen);
- **false holds**: money held that was not stolen (``min(hold, balance) - min(hold, stolen there)``),
  at innocent accounts and at gang accounts (a mule's own money), counted once per account at its
  peak, and the **innocent accounts frozen** (an order with something to hold at an innocent account).

Times: report -> first freeze is the wall-clock time from publishing the report to the worker
publishing the first order naming it, measured through the broker; -> executed adds the
institution's simulated delay. Nothing here reads a clock or a broker.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from connectors.ledger import INNOCENT_ROLES, Holding, Ledger, Lot
from processors.records import AccountKey

MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000
LISTED_STEP_REPORTS = 10  # a trail step on the wire lists at most this many report ids, the lowest
RULES = ("hub", "hop limit", "window", "currency change", "history retention",
         "cash off the feed", "mixed money", "unreported money", "untraced")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Bucket:
    label: str
    from_ms: float
    to_ms: float

    def holds(self, delay_ms: int) -> bool:
        return self.from_ms <= delay_ms < self.to_ms


BUCKETS = (
    Bucket("minutes", 0, 15 * MINUTE_MS),
    Bucket("1 h", 15 * MINUTE_MS, HOUR_MS),
    Bucket("6 h", HOUR_MS, 6 * HOUR_MS),
    Bucket("24 h", 6 * HOUR_MS, 24 * HOUR_MS),
    Bucket("72 h", 24 * HOUR_MS, 72 * HOUR_MS),
    Bucket("later", 72 * HOUR_MS, math.inf),
)
# Finer bins for the curve on the plot.
CURVE_EDGES_MS = (0, 5 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS, 2 * HOUR_MS, 4 * HOUR_MS,
                  8 * HOUR_MS, 12 * HOUR_MS, 18 * HOUR_MS, DAY_MS, 36 * HOUR_MS, 2 * DAY_MS, 3 * DAY_MS,
                  5 * DAY_MS, 7 * DAY_MS, math.inf)  # fmt: skip

# What Thai authorities published as frozen ÷ reported, for comparison on the plot.
THAI_PUBLISHED = (
    {
        "label": "Thai police, Mar 2022 - Jun 2023 (before the AOC 1441 war room)",
        "frozen_over_reported": 0.11,
        "source": "The Nation, 5 March 2024: 1.316 of 11.252 billion baht frozen",
    },
    {
        "label": "AOC 1441 war room, Nov 2023 - Feb 2024",
        "frozen_over_reported": 0.47,
        "source": "The Nation, 5 March 2024: 3.334 of 7.097 billion baht frozen",
    },
    {
        "label": "AOC 1441 war room, January 2024",
        "frozen_over_reported": 0.567,
        "source": "The Nation / The Star, 28 February 2024: 1.9 of 3.4 billion baht",
    },
)


@dataclass(frozen=True, slots=True)
class FreezeVersion:
    """One version of a freeze order, as published (or as ``Interception`` returned it, in a dry run)."""

    action_id: str
    version: int
    account: AccountKey
    currency: str
    hold: int  # minor units; 0 for a released order or a pass-through account
    report_ids: tuple[str, ...]
    complete: bool  # report_ids lists every report behind it
    hub: bool  # the trail stops here
    issued_at_ms: int
    published_ms: int = 0  # wall clock when the worker published it (the record's timestamp); 0 = unknown
    # Its trail steps (as listed: a long trail is cut): txn_id, and the reports whose money the step carried
    # (on the wire at most the 10 lowest ids).
    trail: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def holding(self) -> Holding:
        return (self.account, self.currency)


@dataclass(frozen=True, slots=True)
class SentReport:
    report_id: str
    case: int
    reported_at_ms: int
    delay_ms: int  # from the victim's last payment
    lots: tuple[tuple[Holding, Lot], ...]  # the case's money at gang accounts when the report arrived
    sent_ms: int = 0  # wall clock when it was published; 0 = unknown


@dataclass(frozen=True, slots=True)
class Rules:
    """The pipeline settings the loss attribution needs."""

    trace_window_ms: int
    max_hops: int
    history_retention_ms: int


@dataclass(slots=True)
class ReportScore:
    report_id: str
    delay_ms: int
    reported: int  # THB minor units, as everything below
    reachable: int
    frozen: int = 0
    frozen_executed: int = 0
    held_any_order: int = 0  # R's money under any order's hold, whichever report it names
    orders: int = 0  # first freeze versions naming the report
    latency_s: float | None = None
    executed_after_s: float | None = None
    lost: dict[str, int] = field(default_factory=dict)
    false_innocent: int = 0
    false_gang: int = 0
    innocent_accounts: int = 0


ExecutionDelay = Callable[[FreezeVersion], int | None]  # ms until the institution executes it; None = never


def score_reports(
    reports: Iterable[SentReport],
    versions: Iterable[FreezeVersion],
    ledger: Ledger,
    rules: Rules,
    execution_delay: ExecutionDelay,
) -> list[ReportScore]:
    """Every report's figures, in the order the reports arrived."""
    naming: dict[str, dict[str, FreezeVersion]] = {}  # report -> action -> its first version naming the report
    hub_since: dict[Holding, int] = {}
    at_holding: dict[Holding, list[FreezeVersion]] = {}  # every version, in issue order
    for version in sorted(versions, key=lambda v: (v.issued_at_ms, v.version)):
        for report_id in version.report_ids:
            naming.setdefault(report_id, {}).setdefault(version.action_id, version)
        if version.hub:
            hub_since.setdefault(version.holding, version.issued_at_ms)
        at_holding.setdefault(version.holding, []).append(version)
    peak_false: dict[Holding, int] = {}
    frozen_innocent: set[AccountKey] = set()
    reported: set[int] = set()  # cases whose report has arrived
    scores = []
    for report in sorted(reports, key=lambda r: (r.reported_at_ms, r.report_id)):
        reported.add(report.case)
        mine = list(naming.get(report.report_id, {}).values())
        first_at = min((v.issued_at_ms for v in mine), default=None)
        first = [v for v in mine if v.issued_at_ms == first_at]
        score = ReportScore(
            report.report_id,
            report.delay_ms,
            reported=ledger.paid.get(report.case, 0),
            reachable=sum(lot.thb for _, lot in report.lots),
            orders=len(first),
        )
        frozen_at = _freeze(report, first, ledger, reported, execution_delay, score)
        score.held_any_order = _held_any_order(report, at_holding, first_at, ledger, reported)
        _false_holds(report, first, ledger, peak_false, frozen_innocent, score)
        _attribute(report, first, frozen_at, hub_since, first_at, rules, ledger, reported, score)
        published = [v.published_ms for v in first if v.published_ms]
        if published and report.sent_ms:
            score.latency_s = max(0.0, (min(published) - report.sent_ms) / 1000)
        delays = [d for v in first if v.hold and (d := execution_delay(v)) is not None]
        if delays:
            score.executed_after_s = (score.latency_s or 0.0) + min(delays) / 1000
        scores.append(score)
    return scores


def _freeze(
    report: SentReport,
    first: Sequence[FreezeVersion],
    ledger: Ledger,
    reported: set[int],
    execution_delay: ExecutionDelay,
    score: ReportScore,
) -> dict[Holding, int]:
    """R's share of what each first order holds, per holding (THB minor units); fills frozen and frozen_executed."""
    at = report.reported_at_ms
    snapshot = _reachable_at(report)
    frozen_at: dict[Holding, int] = {}
    for version in first:
        holding = version.holding
        if holding not in snapshot:
            continue
        share, mine, mine_thb = _reported_share(holding, version.hold, report, ledger, reported)
        if not share:
            continue
        thb = min(share * mine_thb // mine, snapshot[holding] - frozen_at.get(holding, 0))
        frozen_at[holding] = frozen_at.get(holding, 0) + thb
        score.frozen += thb
        delay = execution_delay(version)
        if delay is not None:  # what sat there all along until the institution acted
            stayed = min(share, ledger.stolen_lowest(holding, report.case, at, at + delay))
            score.frozen_executed += min(thb, stayed * mine_thb // mine)
    return frozen_at


def _held_any_order(
    report: SentReport,
    at_holding: dict[Holding, list[FreezeVersion]],
    first_at: int | None,
    ledger: Ledger,
    reported: set[int],
) -> int:
    """R's money under a hold right after R's first orders, whichever report the order names (THB minor units).

    The same pro-rata share as ``frozen``, but of the latest version of every order at the holdings where
    R's money is: where several victims' money meets, the trace may credit it to another report, and it
    is held all the same.
    """
    cutoff = report.reported_at_ms if first_at is None else first_at
    held = 0
    for holding, reachable_thb in _reachable_at(report).items():
        latest: dict[str, int] = {}
        for version in at_holding.get(holding, ()):
            if version.issued_at_ms > cutoff:
                break
            latest[version.action_id] = version.hold
        share, mine, mine_thb = _reported_share(holding, max(latest.values(), default=0), report, ledger, reported)
        if share:
            held += min(share * mine_thb // mine, reachable_thb)
    return held


def _reachable_at(report: SentReport) -> dict[Holding, int]:
    """R's money at each holding when its report arrived (THB minor units)."""
    reachable: dict[Holding, int] = {}
    for holding, lot in report.lots:
        reachable[holding] = reachable.get(holding, 0) + lot.thb
    return reachable


def _reported_share(
    holding: Holding, hold: int, report: SentReport, ledger: Ledger, reported: set[int]
) -> tuple[int, int, int]:
    """R's pro-rata share of what ``hold`` holds of reported victims' money at the holding, R's money there and
    its THB worth, at R's arrival; the share is 0 when R has nothing there or nothing is held."""
    at = report.reported_at_ms
    mine, mine_thb = ledger.stolen_at(holding, report.case, at)
    if not mine or not hold:
        return 0, mine, mine_thb
    there = sum(ledger.stolen_at(holding, case, at)[0] for case in ledger.cases_at(holding) if case in reported)
    return min(hold, there) * mine // there, mine, mine_thb


def _false_holds(
    report: SentReport,
    first: Sequence[FreezeVersion],
    ledger: Ledger,
    peak_false: dict[Holding, int],
    frozen_innocent: set[AccountKey],
    score: ReportScore,
) -> None:
    at = report.reported_at_ms
    for version in first:
        holding = version.holding
        if not version.hold or version.currency != "THB":
            continue
        held = min(version.hold, ledger.balance_at(holding, at))
        stolen = min(version.hold, ledger.all_stolen_at(holding, at))
        innocent = ledger.roles.get(version.account) in INNOCENT_ROLES
        false = held - stolen
        if false > peak_false.get(holding, 0):
            gained = false - peak_false.get(holding, 0)
            peak_false[holding] = false
            if innocent:
                score.false_innocent += gained
            else:
                score.false_gang += gained
        if innocent and held > 0 and version.account not in frozen_innocent:
            frozen_innocent.add(version.account)
            score.innocent_accounts += 1


def _attribute(
    report: SentReport,
    first: Sequence[FreezeVersion],
    frozen_at: dict[Holding, int],
    hub_since: dict[Holding, int],
    first_at: int | None,
    rules: Rules,
    ledger: Ledger,
    reported: set[int],
    score: ReportScore,
) -> None:
    """Put the reachable money that was not frozen down to the rule that lost it, lot by lot."""
    ordered = {version.holding for version in first}
    me = report.report_id
    followed = {
        txn_id
        for version in first
        for txn_id, carried in version.trail
        if me in carried or (len(carried) >= LISTED_STEP_REPORTS and carried[-1] < me)
    }
    by_holding: dict[Holding, list[Lot]] = {}
    for holding, lot in report.lots:
        by_holding.setdefault(holding, []).append(lot)
    for holding, lots in by_holding.items():
        total = sum(lot.thb for lot in lots)
        missing = total - frozen_at.get(holding, 0)
        if missing <= 0:
            continue
        left = missing
        for index, lot in enumerate(lots):
            part = left if index == len(lots) - 1 else missing * lot.thb // total
            left -= part
            rule = _why(lot, holding, report, ordered, followed, hub_since, first_at, rules, ledger, reported)
            score.lost[rule] = score.lost.get(rule, 0) + part


def _why(
    lot: Lot,
    holding: Holding,
    report: SentReport,
    ordered: set[Holding],
    followed: set[str],
    hub_since: dict[Holding, int],
    first_at: int | None,
    rules: Rules,
    ledger: Ledger,
    reported: set[int],
) -> str:
    """The first point on the lot's path where the trace stopped following it, and the rule behind it.

    Where none of the trace's rules explains it, FIFO attribution did (money is fungible): ``cash off
    the feed`` if an earlier reported victim's money left that account in cash, which no feed shows,
    so the trace still counted it there and moved it on in place of this victim's; ``mixed money``
    if another reported victim's money was there meanwhile and the gang moved that instead;
    ``unreported money`` if only money of victims not reported yet was; else ``untraced``.
    """
    at, hop, arrived = report.reported_at_ms, 0, lot.path[0].at_ms
    for step in lot.path[1:]:
        if step.kind == "conversion":
            return "currency change"
        if at - step.at_ms > rules.history_retention_ms:
            return "history retention"
        since = hub_since.get((step.source, step.currency))
        if since is not None and (first_at is None or since <= first_at):
            return "hub"
        if hop >= rules.max_hops:
            return "hop limit"
        if step.at_ms - arrived > rules.trace_window_ms:
            return "window"
        if step.txn_id not in followed:
            return _fifo((step.source, step.currency), report.case, arrived, step.at_ms, ledger, reported)
        hop, arrived = hop + 1, step.at_ms
    return _fifo(holding, report.case, arrived, at, ledger, reported) if holding in ordered else "untraced"


def _fifo(holding: Holding, case: int, arrived: int, left: int, ledger: Ledger, reported: set[int]) -> str:
    if ledger.cash_withdrawn(holding, left, reported - {case}):
        return "cash off the feed"
    if ledger.others_present(holding, case, arrived, left, reported):
        return "mixed money"
    if ledger.others_present(holding, case, arrived, left):
        return "unreported money"
    return "untraced"


# -- summaries ---------------------------------------------------------------------------------------


def summarise(scores: Sequence[ReportScore]) -> dict[str, Any]:
    """Overall figures, per delay bucket, and the curve for the plot."""
    return {
        "overall": totals(scores),
        "buckets": [
            {"bucket": bucket.label, **totals([s for s in scores if bucket.holds(s.delay_ms)])} for bucket in BUCKETS
        ],
        "curve": [
            {
                "from_h": low / HOUR_MS,
                "to_h": None if math.isinf(high) else high / HOUR_MS,
                **{key: value for key, value in totals(chosen).items() if key in _CURVE_KEYS},
            }
            for low, high in pairwise(CURVE_EDGES_MS)
            if (chosen := [s for s in scores if low <= s.delay_ms < high])
        ],
        "thai_published": list(THAI_PUBLISHED),
    }


_CURVE_KEYS = {"reports", "frozen_over_reported", "frozen_over_reachable", "reachable_over_reported"}


def totals(scores: Sequence[ReportScore]) -> dict[str, Any]:
    reported = sum(s.reported for s in scores)
    reachable = sum(s.reachable for s in scores)
    frozen = sum(s.frozen for s in scores)
    executed = sum(s.frozen_executed for s in scores)
    held_any_order = sum(s.held_any_order for s in scores)
    lost: dict[str, int] = {}
    for score in scores:
        for rule, amount in score.lost.items():
            lost[rule] = lost.get(rule, 0) + amount
    latencies = sorted(s.latency_s for s in scores if s.latency_s is not None)
    executions = sorted(s.executed_after_s for s in scores if s.executed_after_s is not None)
    return {
        "reports": len(scores),
        "reports_with_reachable_money": sum(1 for s in scores if s.reachable),
        "reported_thb": baht(reported),
        "reachable_thb": baht(reachable),
        "frozen_thb": baht(frozen),
        "frozen_executed_thb": baht(executed),
        "reachable_over_reported": _ratio(reachable, reported),
        "frozen_over_reported": _ratio(frozen, reported),
        "frozen_over_reachable": _ratio(frozen, reachable),
        "frozen_executed_over_reachable": _ratio(executed, reachable),
        "held_under_any_order_thb": baht(held_any_order),
        "held_under_any_order_over_reachable": _ratio(held_any_order, reachable),
        "report_to_first_freeze_s": _quantiles(latencies),
        "reports_without_a_freeze": sum(1 for s in scores if not s.orders),
        "report_to_first_executed_freeze_s": _quantiles(executions),
        "reports_never_executed": sum(1 for s in scores if s.orders and s.executed_after_s is None),
        "lost_thb_by_rule": {rule: baht(lost[rule]) for rule in RULES if lost.get(rule)},
        "false_holds_innocent_thb": baht(sum(s.false_innocent for s in scores)),
        "false_holds_gang_own_money_thb": baht(sum(s.false_gang for s in scores)),
        "innocent_accounts_frozen": sum(s.innocent_accounts for s in scores),
    }


def baht(minor: int) -> float:
    return round(minor / 100, 2)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantiles(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50": round(statistics.median(values), 3),
        "p90": round(values[min(len(values) - 1, int(len(values) * 0.9))], 3),
        "max": round(values[-1], 3),
    }


def table(summary: dict[str, Any]) -> str:
    """The terminal table: one row per delay bucket, then all reports."""
    header = ("delay", "reports", "reported THB", "reachable", "frozen/reported", "frozen/reachable",
              "→freeze p50", "→executed p50", "false holds THB", "innocent accts", "lost mostly to")  # fmt: skip
    rows = [header]
    for label, figures in [*((b["bucket"], b) for b in summary["buckets"]), ("all", summary["overall"])]:
        lost = figures["lost_thb_by_rule"]
        top = max(lost, key=lost.get) if lost else "-"
        rows.append(
            (
                label,
                str(figures["reports"]),
                f"{figures['reported_thb']:,.0f}",
                _percent(figures["reachable_over_reported"]),
                _percent(figures["frozen_over_reported"]),
                _percent(figures["frozen_over_reachable"]),
                _seconds(figures["report_to_first_freeze_s"]),
                _seconds(figures["report_to_first_executed_freeze_s"]),
                f"{figures['false_holds_innocent_thb'] + figures['false_holds_gang_own_money_thb']:,.0f}",
                str(figures["innocent_accounts_frozen"]),
                top,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in
                       enumerate(zip(row, widths, strict=True))) for row in rows]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _seconds(quantiles: dict[str, float] | None) -> str:
    if quantiles is None:
        return "-"
    value = quantiles["p50"]
    return f"{value:.2f} s" if value < 120 else f"{value / 60:.0f} min"

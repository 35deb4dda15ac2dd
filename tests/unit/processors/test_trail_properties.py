"""Properties of the money trail that must hold for any input and any arrival order.

Random small transfer graphs (a handful of mule accounts, cycles allowed, two
currencies) with 1-3 reports are fed to ``MoneyTrail`` in a random order, with
redeliveries and re-traces at random points. What a consumer of the re-traces
ends up knowing, and the freeze orders left live, must equal one trace of
everything at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.freeze_orders import FreezeBook
from processors.money_trail import CaseTrace, Holding, MoneyTrail, Taint, TraceSettings, TransactionIndex, trace_case
from processors.records import AccountKey, Report, Transfer

MULES = [("bank", "KBANK", f"mule-{n}") for n in range(5)]
CURRENCIES = ["THB", "THB", "USD"]  # mostly one currency, so money meets often
# Small against the generated times (0..60), so the window and the hop limit both cut trails.
TRACE = TraceSettings(trace_window_ms=25, max_hops=2, history_retention_ms=10**9)

# What a freeze order is built from, per holding.
Outcome = tuple[int, int, int, int, frozenset[str], int, int]


@dataclass(frozen=True)
class Scenario:
    reports: list[Report]
    feed: list[Transfer]


amounts = st.integers(min_value=1, max_value=100)
times = st.integers(min_value=0, max_value=60)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    reports = []
    for r in range(draw(st.integers(min_value=1, max_value=3))):
        victim: AccountKey = ("bank", "KBANK", f"victim-{r}")
        sent = draw(
            st.lists(
                st.tuples(st.sampled_from(MULES), amounts, times, st.sampled_from(CURRENCIES)), min_size=1, max_size=2
            )
        )
        transfers = tuple(
            Transfer(f"r{r}-t{i}", victim, mule, amount, currency, at)
            for i, (mule, amount, at, currency) in enumerate(sent)
        )
        reports.append(Report(f"r{r}", 100, 1_000, f"victim-{r}", "TH", "investment", transfers))
    moves = draw(
        st.lists(
            st.tuples(
                st.sampled_from(MULES), st.sampled_from(MULES), amounts, times, st.sampled_from(CURRENCIES)
            ).filter(lambda m: m[0] != m[1]),
            max_size=14,
        )
    )
    feed = [
        Transfer(f"x{i}", src, dst, amount, currency, at) for i, (src, dst, amount, at, currency) in enumerate(moves)
    ]
    # The bank feed also carries the reported transfers themselves.
    feed += [sent for report in reports for sent in report.transfers]
    return Scenario(reports, feed)


def outcome(taint: Taint) -> Outcome:
    return (
        taint.remaining,
        taint.received,
        taint.moved_on,
        taint.hop,
        frozenset(taint.report_ids),
        taint.first_arrival_ms,
        taint.last_arrival_ms,
    )


def traced_at_once(scenario: Scenario) -> CaseTrace:
    index = TransactionIndex()
    for move in scenario.feed:
        index.add(move)
    return trace_case(scenario.reports, index, TRACE)


def loss_by_currency(reports: list[Report]) -> Counter[str]:
    loss: Counter[str] = Counter()
    for report in reports:
        loss.update(report.loss_by_currency)
    return loss


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_any_arrival_order_ends_where_tracing_everything_at_once_does(scenario: Scenario, data: st.DataObject) -> None:
    events: list[Report | Transfer] = [*scenario.reports, *scenario.feed]
    # Redeliveries: the same transfer again, and reports again with a later broker receipt.
    events += data.draw(st.lists(st.sampled_from(scenario.feed), max_size=3))
    events += [
        Report(r.report_id, r.reported_at_ms, r.received_at_ms + 1, r.victim_id, r.country, r.scam_type, r.transfers)
        for r in data.draw(st.lists(st.sampled_from(scenario.reports), max_size=2))
    ]
    arrivals = data.draw(st.permutations(events))
    retrace_after = data.draw(st.lists(st.booleans(), min_size=len(arrivals), max_size=len(arrivals)))

    trail = MoneyTrail(TRACE)
    book = FreezeBook(max_hops=TRACE.max_hops, hold_duration_ms=1_000)
    seen: dict[Holding, Outcome] = {}
    versions: dict[str, int] = {}

    def retrace() -> None:
        changed, owners = trail.retrace()
        for holding, taint in changed.items():
            if taint is None:
                seen.pop(holding, None)
            else:
                assert owners[holding].taints[holding] is taint
                seen[holding] = outcome(taint)
        for order in book.update(changed, owners, trail.reports, now_ms=0):
            assert order.version == versions.get(order.action_id, 0) + 1
            versions[order.action_id] = order.version
            assert 0 <= order.hold <= order.received

    for event, then_retrace in zip(arrivals, retrace_after, strict=True):
        if isinstance(event, Report):
            trail.add_report(event)
        else:
            trail.add_transaction(event)
        if then_retrace:
            retrace()
    retrace()

    at_once = traced_at_once(scenario)
    assert seen == {holding: outcome(taint) for holding, taint in at_once.taints.items()}
    # The live case traces hold each holding once, and nothing else.
    live = [holding for trace in trail.traces.values() for holding in trace.taints]
    assert sorted(live) == sorted(at_once.taints)
    holds = {(order.target, order.currency): order.hold for order in book.live_orders()}
    assert holds == {holding: taint.remaining for holding, taint in at_once.taints.items()}
    held: Counter[str] = Counter()
    for (_, currency), hold in holds.items():
        held[currency] += hold
    loss = loss_by_currency(scenario.reports)
    assert all(held[currency] <= loss[currency] for currency in held)


def assert_money_is_conserved(trace: CaseTrace, loss: Mapping[str, int]) -> None:
    for taint in trace.taints.values():
        assert 0 <= taint.moved_on <= taint.received
        assert taint.remaining >= 0
    # Steps are what arrives at each hop (a holding's own hop is only its nearest, and money
    # can reach an account at several hops, so steps are the level to sum at).
    arrived_at_hop: Counter[tuple[int, str]] = Counter()
    arrived_in: Counter[Holding] = Counter()
    for step in trace.steps.values():
        arrived_at_hop[(step.hop, step.currency)] += step.tainted_amount
        arrived_in[(step.target, step.currency)] += step.tainted_amount
    for (_, currency), amount in arrived_at_hop.items():
        assert amount <= loss[currency]
    assert {holding: taint.received for holding, taint in trace.taints.items()} == dict(arrived_in)
    held: Counter[str] = Counter()
    for (_, currency), taint in trace.taints.items():
        held[currency] += taint.remaining
    for currency, amount in held.items():
        assert amount <= loss[currency]
    # Every reported unit is still held somewhere or went past the last hop followed: none is created or lost.
    assert sum(held.values()) + trace.beyond_max_hops == sum(loss.values())


@settings(max_examples=100, deadline=None)
@given(scenario=scenarios())
def test_the_trace_never_creates_money(scenario: Scenario) -> None:
    assert_money_is_conserved(traced_at_once(scenario), loss_by_currency(scenario.reports))

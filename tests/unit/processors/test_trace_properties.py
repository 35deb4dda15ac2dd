"""The pipeline's trace is held to the reference oracle, for any scenario and any arrival order.

Scenarios are generated awkward on purpose: self-transfers, cycles, victims who are
also mules, transfers named by a report and in the feed (sometimes with another
time), txn ids shared between reports, report corrections, hubs, late and
redelivered input, restarts mid-stream. Every input goes through the real
``Interception`` step as wire JSON (decode, revisions, trail, freeze book); its
final freeze actions must equal the orders built from ``trace_reference`` on the
final inputs.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.interception import BatchResult, Interception
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS, VICTIM_REPORTS
from processors.freeze_orders import FreezeBook, FreezeOrder, freeze_action_id
from processors.money_trail import Flow, FlowUpdate, Holding, HoldingTrace, MoneyTrail, TraceSettings
from processors.records import AccountKey, Report, Transfer
from processors.trace_reference import trace_reference
from schemas.fields import format_minor_units

EPOCH_MS = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp() * 1000)
MULES: list[AccountKey] = [("bank", "KBANK", f"mule-{n}") for n in range(5)]
VICTIMS: list[AccountKey] = [("bank", "SCB", f"victim-{n}") for n in range(3)]
HUB: AccountKey = ("bank", "PAYHUB", "omnibus")
CURRENCIES = ["THB", "THB", "USD"]  # mostly one currency, so money meets often
# Small against the generated times (0..60 s), so the window, the hop limit and the hub rule all cut trails.
SETTINGS = Settings(
    trace_window=timedelta(seconds=25),
    max_hops=2,
    hub_counterparties=5,
    hub_accounts=frozenset({"bank:LISTEDHUB:*"}),
    history_retention=timedelta(days=30),
)
TRACE = SETTINGS.trace
NOW_MS = 10**13


@dataclass
class Scenario:
    reports: list[Report]  # every revision sent, in generation order
    feed: list[Transfer]

    @property
    def final_reports(self) -> list[Report]:
        latest: dict[str, Report] = {}
        for report in self.reports:
            if report.report_id not in latest or report.revision > latest[report.report_id].revision:
                latest[report.report_id] = report
        return list(latest.values())


@dataclass(frozen=True)
class Record:
    """What the worker loop hands the interception step: aiokafka's ConsumerRecord, in part."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes


amounts = st.integers(min_value=1, max_value=100).map(lambda n: n * 100)  # whole units: exact as JSON
# Event times in whole seconds over one minute, so ties happen.
times = st.integers(min_value=0, max_value=60_000).map(lambda ms: EPOCH_MS + ms - ms % 1000)
ATM: AccountKey = ("cash", "KBANK", "ATM-0042")  # withdrawals (and deposits) the bank reports
accounts = st.sampled_from([*MULES, *VICTIMS[:1], HUB, ("bank", "LISTEDHUB", "x"), ATM])


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    shared_ids = [f"shared-{n}" for n in range(3)]  # named by several reports, or by a report and the feed
    reports: list[Report] = []
    for r in range(draw(st.integers(min_value=1, max_value=3))):
        for revision in range(1, draw(st.integers(min_value=1, max_value=2)) + 1):
            sent = []
            for i in range(draw(st.integers(min_value=1, max_value=2))):
                # Usually the victim's own account; sometimes a mule who is also a victim.
                source = draw(st.sampled_from([VICTIMS[r], VICTIMS[r], *MULES]))
                txn_id = draw(st.sampled_from([f"r{r}v{revision}t{i}", f"r{r}t{i}", *shared_ids]))
                target = draw(st.sampled_from(MULES).filter(lambda m, s=source: m != s))
                sent.append(
                    Transfer(txn_id, source, target, draw(amounts), draw(st.sampled_from(CURRENCIES)), draw(times))
                )
            reported_at = max(t.at_ms for t in sent) + 1000
            reports.append(
                Report(f"r{r}", reported_at, 0, f"victim-{r}", "TH", "investment", tuple(sent), revision=revision)
            )
    feed = [
        Transfer(f"x{i}", draw(accounts), draw(accounts), draw(amounts), draw(st.sampled_from(CURRENCIES)), draw(times))
        for i in range(draw(st.integers(min_value=0, max_value=14)))
    ]  # self-transfers and cycles included: nothing filters them out
    # The feed also carries reported transfers: sometimes as reported, sometimes executed at another time,
    # and a shared id may be a feed transfer no report tells the truth about.
    for report in reports:
        for sent in report.transfers:
            choice = draw(st.sampled_from(["same", "earlier", "absent", "absent"]))
            if choice == "same":
                feed.append(sent)
            elif choice == "earlier":
                feed.append(Transfer(sent.txn_id, sent.source, sent.target, sent.amount, sent.currency,
                                     sent.at_ms - 2000))  # fmt: skip
    # Customers of the hub, so it has enough counterparties to be one.
    if draw(st.booleans()):
        for n in range(6):
            feed.append(Transfer(f"c{n}", ("bank", "BBL", f"customer-{n}"), HUB, 100, "THB", draw(times)))
    return Scenario(reports, _first_delivery_only(feed))


def _first_delivery_only(feed: list[Transfer]) -> list[Transfer]:
    # Two different records under one txn_id would make "the first delivery wins" decide the outcome;
    # redeliveries of the same record are added separately.
    seen: dict[str, Transfer] = {}
    for transfer in feed:
        seen.setdefault(transfer.txn_id, transfer)
    return list(seen.values())


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _account(key: AccountKey) -> dict[str, str]:
    return {"kind": key[0], "institution": key[1], "account": key[2]}


def _transaction_json(t: Transfer) -> bytes:
    return orjson.dumps({
        "txn_id": t.txn_id, "from_account": _account(t.source), "to_account": _account(t.target),
        "amount": format_minor_units(t.amount, t.currency), "currency": t.currency, "executed_at": _iso(t.at_ms),
    })  # fmt: skip


def _report_json(r: Report) -> bytes:
    return orjson.dumps({
        "report_id": r.report_id, "revision": r.revision, "reported_at": _iso(r.reported_at_ms),
        "victim_id": r.victim_id, "country": r.country, "scam_type": r.scam_type,
        "transfers": [
            {"txn_id": t.txn_id, "from_account": _account(t.source), "to_account": _account(t.target),
             "amount": format_minor_units(t.amount, t.currency), "currency": t.currency, "sent_at": _iso(t.at_ms)}
            for t in r.transfers
        ],
    })  # fmt: skip


def records_of(events: Sequence[Report | Transfer]) -> list[Record]:
    out = []
    for offset, event in enumerate(events):
        received_ms = NOW_MS - 1_000_000 + offset  # shortly before now: no report has expired by then
        if isinstance(event, Report):
            out.append(Record(SETTINGS.topic(VICTIM_REPORTS), 0, offset, received_ms, _report_json(event)))
        else:
            out.append(Record(SETTINGS.topic(BANK_TRANSACTIONS), 0, offset, received_ms, _transaction_json(event)))
    return out


@dataclass
class Run:
    """Everything one run published, and the interception it ended with."""

    interception: Interception
    published: list[FreezeOrder] = field(default_factory=list)

    def final(self) -> dict[str, FreezeOrder]:
        latest: dict[str, FreezeOrder] = {}
        for order in self.published:
            if order.action_id not in latest or order.version > latest[order.action_id].version:
                latest[order.action_id] = order
        return latest


def interception(partitions: int) -> Interception:
    """The real interception step, its trail split into ``partitions`` as a consumer group would split it."""
    step = Interception(SETTINGS)
    step.trail = MoneyTrail(TRACE, partitions)
    return step


def run_pipeline(
    records: Sequence[Record], cuts: Iterable[int], restart_at: int | None = None, partitions: int = 1
) -> Run:
    """Feed records in batches ending at ``cuts``; optionally restart (restore + replay) before ``restart_at``."""
    run = Run(interception(partitions))
    start = 0
    for end in sorted({*cuts, len(records)}):
        if restart_at is not None and start <= restart_at < end:
            end = restart_at
        batch = records[start:end]
        if batch:
            run.published.extend(run.interception.process(batch, NOW_MS).orders)
        start = end
        if restart_at is not None and end == restart_at:
            run.interception = _restarted(run.published, records[:end], partitions)
            restart_at = None
    if start < len(records):
        run.published.extend(run.interception.process(records[start:], NOW_MS).orders)
    return run


def _restarted(published: Sequence[FreezeOrder], committed: Sequence[Record], partitions: int) -> Interception:
    """A new worker: the actions topic read back, then the inputs replayed up to the committed offsets."""
    fresh = interception(partitions)
    for order in published:
        fresh.restore(order)
    fresh.ingest(committed, BatchResult())
    fresh.rebuild(NOW_MS)
    return fresh


def expected_orders(scenario: Scenario) -> dict[str, HoldingTrace]:
    traced = trace_reference(scenario.final_reports, scenario.feed, TRACE)
    return {freeze_action_id(holding): trace for holding, trace in traced.items()}


def assert_matches_oracle(run: Run, scenario: Scenario) -> None:
    expected = expected_orders(scenario)
    final = run.final()
    book = FreezeBook(max_hops=SETTINGS.max_hops, hold_duration_ms=SETTINGS.hold_duration_ms)
    reports = {r.report_id: r for r in scenario.final_reports}
    wanted = {o.action_id: o for o in book.update({t.holding: t for t in expected.values()}, {}, reports, NOW_MS)}
    for action_id, order in final.items():
        if action_id not in expected:
            assert order.status == "released", f"{order.target} {order.currency}: the oracle reaches nothing here"
    for action_id, want in wanted.items():
        got = final.get(action_id)
        assert got is not None, f"no action for {want.target} {want.currency}"
        assert (got.status, got.currency, got.hold, got.hop, got.received, got.moved_on) == (
            want.status, want.currency, want.hold, want.hop, want.received, want.moved_on,
        ), f"{want.target} {want.currency}"  # fmt: skip
        assert got.report_ids == want.report_ids
        assert got.trail == want.trail
        assert got.evidence_digest == want.evidence_digest


def assert_versions_are_consistent(published: Sequence[FreezeOrder]) -> None:
    """One content per (action_id, version), and consecutive versions always decide something new."""
    by_version: dict[tuple[str, int], FreezeOrder] = {}
    for order in published:
        known = by_version.setdefault((order.action_id, order.version), order)
        assert known.fingerprint == order.fingerprint, f"{order.action_id} v{order.version} published twice"
    versions: dict[str, list[FreezeOrder]] = {}
    for (action_id, _), order in sorted(by_version.items()):
        versions.setdefault(action_id, []).append(order)
    for orders in versions.values():
        assert [o.version for o in orders] == list(range(1, len(orders) + 1))
        for older, newer in itertools.pairwise(orders):
            assert older.fingerprint != newer.fingerprint


def events_of(scenario: Scenario) -> list[Report | Transfer]:
    return [*scenario.reports, *scenario.feed]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.randoms(use_true_random=False), st.data())
def test_final_actions_equal_the_oracle_in_any_arrival_order(
    scenario: Scenario, rng: random.Random, data: st.DataObject
) -> None:
    events = events_of(scenario)
    rng.shuffle(events)
    # Redeliveries: the same record again, anywhere later.
    for event in rng.sample(events, k=min(3, len(events))):
        events.insert(rng.randint(events.index(event) + 1, len(events)), event)
    records = records_of(events)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(records)), max_size=6))
    restart = data.draw(st.none() | st.integers(min_value=1, max_value=len(records)))
    run = run_pipeline(records, cuts, restart, partitions=data.draw(st.sampled_from([1, 1, 3, 6])))
    assert_matches_oracle(run, scenario)
    assert_versions_are_consistent(run.published)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_tainted_money_credited_to_an_account_never_exceeds_what_was_paid_into_it(scenario: Scenario) -> None:
    # The bound is taken from the raw inputs, not from the trace: every distinct transfer into the
    # account, at the largest amount any version of it claims.
    paid_in: dict[tuple[AccountKey, str], dict[str, int]] = {}
    for transfer in [*scenario.feed, *(t for r in scenario.final_reports for t in r.transfers)]:
        if transfer.source != transfer.target:
            by_txn = paid_in.setdefault((transfer.target, transfer.currency), {})
            by_txn[transfer.txn_id] = max(by_txn.get(transfer.txn_id, 0), transfer.amount)
    traced = trace_reference(scenario.final_reports, scenario.feed, TRACE)
    run = run_pipeline(records_of(events_of(scenario)), cuts=())
    for order in run.final().values():
        if order.status == "active":
            ceiling = sum(paid_in.get((order.target, order.currency), {}).values())
            assert order.received <= ceiling
            assert 0 <= order.hold <= order.received
    for holding, trace in traced.items():
        assert trace.received <= sum(paid_in.get(holding, {}).values())
    # Holds never add up to more than was reported stolen, per currency, counting each transfer once
    # (at its largest amount, in every currency any version of it names).
    stolen: dict[str, dict[str, int]] = {}
    named = {sent.txn_id for report in scenario.final_reports for sent in report.transfers}
    for version in [*scenario.feed, *(t for r in scenario.final_reports for t in r.transfers)]:
        if version.txn_id in named:
            by_txn = stolen.setdefault(version.currency, {})
            by_txn[version.txn_id] = max(by_txn.get(version.txn_id, 0), version.amount)
    for currency in {t.currency for t in traced.values()}:
        held = sum(t.received if t.hub_reason else t.remaining for t in traced.values() if t.currency == currency)
        assert held <= sum(stolen.get(currency, {}).values())


def test_a_fan_in_of_thousands_matches_the_oracle_in_several_orders() -> None:
    cash_out: AccountKey = ("crypto", "EXCHANGE", "cash-out")
    reports, feed = [], []
    for n in range(2000):
        victim, mule = ("bank", "SCB", f"v{n}"), ("bank", "KBANK", f"m{n % 40}")
        paid = Transfer(f"p{n}", victim, mule, 100 + n % 7, "THB", n * 10)
        reports.append(Report(f"R{n:04d}", n * 10 + 5, 0, f"v{n}", "TH", "investment", (paid,)))
        feed.append(Transfer(f"f{n}", mule, cash_out, 100 + n % 7, "THB", n * 10 + 1))
    trace = TraceSettings(trace_window_ms=10**9, max_hops=4, hub_counterparties=10**6)
    expected = trace_reference(reports, feed, trace)
    assert expected[(cash_out, "THB")].received == sum(100 + n % 7 for n in range(2000))
    for seed in range(3):
        events: list[Report | Transfer] = [*reports, *feed]
        random.Random(seed).shuffle(events)
        trail = MoneyTrail(trace)
        for start in range(0, len(events), 500):
            for event in events[start : start + 500]:
                trail.add_report(event) if isinstance(event, Report) else trail.add_transaction(event)
            trail.retrace()
        assert trail.holdings() == expected


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_eviction_and_redelivery_of_evicted_transactions_change_nothing(scenario: Scenario, rng: random.Random) -> None:
    # In event-time order with eviction as the feed moves on, against the same run where every
    # transaction is also redelivered after it may have been evicted.
    trace = TraceSettings(trace_window_ms=25_000, max_hops=2, history_retention_ms=20_000, hub_counterparties=5)
    feed = sorted(scenario.feed, key=lambda t: (t.at_ms, t.txn_id))

    def run(redeliver: bool) -> dict[object, HoldingTrace]:
        trail = MoneyTrail(trace)
        for report in scenario.final_reports:
            trail.add_report(report)
        for n, transfer in enumerate(feed):
            trail.add_transaction(transfer)
            if n % 3 == 2:
                trail.retrace()
                trail.evict()
            if redeliver:
                for old in rng.sample(feed[: n + 1], k=min(2, n + 1)):
                    trail.add_transaction(old)
        trail.retrace()
        return dict(trail.holdings())

    assert run(redeliver=True) == run(redeliver=False)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.integers(min_value=1, max_value=4), st.data())
def test_forgetting_expired_reports_traces_as_if_they_had_never_come(
    scenario: Scenario, partitions: int, data: st.DataObject
) -> None:
    reports = scenario.final_reports
    expired = data.draw(st.sets(st.sampled_from([r.report_id for r in reports])), label="expired")
    trail = MoneyTrail(TRACE, partitions)
    for event in events_of(scenario):
        trail.add_report(event) if isinstance(event, Report) else trail.add_transaction(event)
    view: dict[Holding, HoldingTrace] = {}
    _follow(view, trail.retrace())

    assert trail.forget_reports([*sorted(expired), "never-seen"]) == len(expired)
    _follow(view, trail.retrace())

    expected = trace_reference([r for r in reports if r.report_id not in expired], scenario.feed, TRACE)
    assert trail.holdings() == expected
    assert view == expected  # the changes returned say so too, so the freeze book follows


class AsynchronousTrail(MoneyTrail):
    """The partitioned trail as a consumer group would run it: partitions settle in any order, and
    content updates reach other partitions late and interleaved (in order per key, as Kafka keeps it)."""

    def __init__(self, settings: TraceSettings, partitions: int, rng: random.Random) -> None:
        super().__init__(settings, partitions)
        self.rng = rng

    def retrace(self) -> dict[Holding, HoldingTrace | None]:
        in_flight: list[FlowUpdate] = []
        while in_flight or any(partition.unsettled for partition in self.accounts.values()):
            unsettled = [partition for partition in self.accounts.values() if partition.unsettled]
            if unsettled and (not in_flight or self.rng.random() < 0.5):
                in_flight.extend(self.rng.choice(unsettled).settle())
                continue
            keys_seen: set[tuple[AccountKey, Flow]] = set()
            delivered, kept = [], []
            for update in in_flight:  # a random subset, never overtaking an earlier update of the same key
                key = (update[0], update[1])
                if key not in keys_seen and self.rng.random() < 0.5:
                    delivered.append(update)
                else:
                    kept.append(update)
                keys_seen.add(key)
            in_flight = kept
            for target, flow, content in delivered:
                self.accounts[self.partition_of_account(target)].flow(target, flow, content)
        changed: dict[Holding, HoldingTrace | None] = {}
        for partition in self.accounts.values():
            changed.update(partition.changes())
        return changed


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.integers(min_value=1, max_value=7), st.randoms(use_true_random=False))
def test_a_partitioned_trail_with_late_interleaved_messages_matches_the_oracle(
    scenario: Scenario, partitions: int, rng: random.Random
) -> None:
    events = [*scenario.final_reports, *scenario.feed]
    rng.shuffle(events)
    trail = AsynchronousTrail(TRACE, partitions, rng)
    view: dict[Holding, HoldingTrace] = {}  # what a consumer of the re-traces ends up knowing
    for event in events:
        trail.add_report(event) if isinstance(event, Report) else trail.add_transaction(event)
        if rng.random() < 0.3:
            _follow(view, trail.retrace())
    _follow(view, trail.retrace())
    expected = trace_reference(scenario.final_reports, scenario.feed, TRACE)
    assert trail.holdings() == expected
    assert view == expected


def _follow(view: dict[Holding, HoldingTrace], changed: dict[Holding, HoldingTrace | None]) -> None:
    for holding, trace in changed.items():
        if trace is None:
            view.pop(holding, None)
        else:
            view[holding] = trace


def _bounce_scenario() -> Scenario:
    a, b = MULES[0], MULES[1]
    paid = Transfer("pay", VICTIMS[0], a, 10_000, "THB", EPOCH_MS)
    bounces = [Transfer(f"b{n}", a if n % 2 == 0 else b, b if n % 2 == 0 else a, 10_000, "THB",
                        EPOCH_MS + 1000 * (n + 1)) for n in range(5)]  # fmt: skip
    return Scenario([Report("r0", EPOCH_MS + 10_000, 0, "v", "TH", "investment", (paid,))], [paid, *bounces])


def test_the_generators_produce_the_awkward_cases_they_claim() -> None:
    """Guard against a generator that quietly tests only the easy world."""
    seen: dict[str, bool] = dict.fromkeys(
        ["self_transfer", "victim_is_mule", "shared_txn", "correction", "feed_disagrees", "hub", "tainted_withdrawal"],
        False,
    )

    # Derandomized: a guard that a lucky or unlucky seed can pass or fail guards nothing (one in a CI run missed the
    # tainted withdrawal in 300 random examples).
    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(scenarios())
    def look(scenario: Scenario) -> None:
        ids = [t.txn_id for r in scenario.final_reports for t in r.transfers]
        seen["self_transfer"] |= any(t.source == t.target for t in scenario.feed)
        seen["victim_is_mule"] |= any(t.source in MULES for r in scenario.reports for t in r.transfers)
        seen["shared_txn"] |= len(ids) != len(set(ids))
        seen["correction"] |= any(r.revision > 1 for r in scenario.reports)
        named = {t.txn_id: t for r in scenario.final_reports for t in r.transfers}
        seen["feed_disagrees"] |= any(t.txn_id in named and named[t.txn_id].at_ms != t.at_ms for t in scenario.feed)
        traced = trace_reference(scenario.final_reports, scenario.feed, TRACE)
        seen["hub"] |= any(t.hub_reason for t in traced.values())
        seen["tainted_withdrawal"] |= any(
            t.target == ATM and (t.source, t.currency) in traced and traced[(t.source, t.currency)].moved_on
            for t in scenario.feed
        )

    look()
    assert all(seen.values()), seen


def test_a_bounce_between_two_accounts_leaves_the_money_where_it_stopped() -> None:
    scenario = _bounce_scenario()
    run = run_pipeline(records_of(events_of(scenario)), cuts=())
    assert_matches_oracle(run, scenario)
    holds = {o.target[2]: (o.hold, o.hop) for o in run.final().values()}
    assert holds == {"mule-0": (0, 0), "mule-1": (10_000, 1)}

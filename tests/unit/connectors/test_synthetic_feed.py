"""The demo feed speaks the v1 contract, replays exactly, and its ground truth is what the trace finds."""

from __future__ import annotations

import random

import orjson
import pytest

from connectors.synthetic_feed import (
    LOSS_MAJOR,
    FeedEvent,
    FeedSettings,
    FeedSettingsError,
    ScenarioFeed,
    bulk_bank_transactions,
)
from processors.money_trail import MoneyTrail, Taint, TraceSettings
from processors.records import Report, Transfer
from schemas.decode import Rejection, decode_bank_transaction, decode_victim_report
from schemas.events import BankTransaction, VictimReport

T0 = 1_763_892_000_000  # 2025-11-23T10:00:00Z
MAX_BYTES = 65_536
BANK, REPORTS = "bank-transactions", "victim-reports"


def run(feed: ScenarioFeed, duration_ms: int, step_ms: int = 80, start_ms: int = T0) -> list[FeedEvent]:
    events: list[FeedEvent] = []
    for now in range(start_ms, start_ms + duration_ms + 1, step_ms):
        events += feed.events_until(now)
    return events


def bank_transfer(event: FeedEvent) -> Transfer:
    decoded = decode_bank_transaction(event.encode(), MAX_BYTES)
    assert isinstance(decoded, Transfer), decoded
    return decoded


def victim_report(event: FeedEvent) -> Report:
    decoded = decode_victim_report(event.encode(), MAX_BYTES, event.at_ms)
    assert isinstance(decoded, Report), decoded
    return decoded


def test_every_value_follows_the_v1_contract_except_the_deliberately_bad_ones() -> None:
    events = run(ScenarioFeed(FeedSettings(seed=3, cases_per_minute=60, bad_event_every=40)), 60_000)

    reasons = set()
    for event in events:
        if isinstance(event.value, bytes):
            assert event.topic == BANK
            rejection = decode_bank_transaction(event.value, MAX_BYTES)
            assert isinstance(rejection, Rejection), event.value
            reasons.add(rejection.reason)
            continue
        assert event.encode() == orjson.dumps(event.value)
        if event.topic == BANK:
            txn = BankTransaction.model_validate_json(orjson.dumps(event.value))
            assert txn.executed_at == event.at_ms  # emitted when it happens
        else:
            assert event.topic == REPORTS
            report = VictimReport.model_validate_json(orjson.dumps(event.value))
            assert report.reported_at == event.at_ms
            assert report.country == "TH"
            assert event.key == report.report_id.encode()

    good_bank = [e.value for e in events if e.topic == BANK and isinstance(e.value, dict)]
    assert {REPORTS, BANK} == {e.topic for e in events}
    assert reasons == {"malformed_json", "invalid_event"}
    assert {e.key is None for e in events if e.topic == BANK} == {True, False}
    assert {type(v["amount"]) for v in good_bank} == {str, int, float}
    assert {v["executed_at"][-1] for v in good_bank} == {"Z", "0"}  # "Z" and "+07:00"


def test_every_nth_background_transaction_becomes_a_bad_message() -> None:
    events = run(ScenarioFeed(FeedSettings(seed=4, cases_per_minute=0, bad_event_every=7)), 5_000)

    bad_positions = [n for n, e in enumerate(events, start=1) if isinstance(e.value, bytes)]
    assert len(events) > 500
    assert bad_positions == list(range(7, len(events) + 1, 7))
    assert len({e.value for e in events if isinstance(e.value, bytes)}) == len(bad_positions)


def test_same_seed_gives_the_same_events_however_often_the_caller_polls() -> None:
    settings = FeedSettings(seed=11, cases_per_minute=40, bad_event_every=50)
    steady = ScenarioFeed(settings)
    steady_events = run(steady, 90_000, step_ms=50)

    jittery = ScenarioFeed(settings)
    polls = random.Random(0)
    jittery_events, now = jittery.events_until(T0), T0
    while now < T0 + 90_000:
        now = min(now + polls.randint(1, 700), T0 + 90_000)
        jittery_events += jittery.events_until(now)

    other = run(ScenarioFeed(FeedSettings(seed=12, cases_per_minute=40, bad_event_every=50)), 90_000, step_ms=50)
    assert jittery_events == steady_events
    assert jittery.cases == steady.cases
    assert other != steady_events


def test_a_later_start_replays_the_same_scenario_shifted() -> None:
    def shape(events: list[FeedEvent], start_ms: int) -> list[tuple[str, bytes | None, int, object]]:
        return [
            (e.topic, e.key, e.at_ms - start_ms, e.value if isinstance(e.value, bytes) else e.value.get("txn_id"))
            for e in events
        ]

    later = T0 + 3_600_000 + 7
    first, second = ScenarioFeed(FeedSettings(seed=5)), ScenarioFeed(FeedSettings(seed=5))
    assert shape(run(first, 60_000), T0) == shape(run(second, 60_000, start_ms=later), later)
    assert [c.paid_at_ms - T0 for c in first.cases] == [c.paid_at_ms - later for c in second.cases]


def test_events_until_returns_nothing_early_and_nothing_twice() -> None:
    feed = ScenarioFeed(FeedSettings(seed=6, cases_per_minute=60))
    polls = random.Random(1)
    previous = T0
    assert all(e.at_ms <= T0 for e in feed.events_until(T0))
    seen: list[FeedEvent] = []
    for _ in range(600):
        now = previous + polls.randint(0, 200)
        batch = feed.events_until(now)
        assert all(previous < e.at_ms <= now for e in batch)
        assert [e.at_ms for e in batch] == sorted(e.at_ms for e in batch)
        assert feed.events_until(now) == []
        assert feed.events_until(now - 500) == []
        seen += batch
        previous = now

    ids = [e.value.get("txn_id") or e.value["report_id"] for e in seen if isinstance(e.value, dict)]
    assert len(ids) == len(set(ids)) > 1_000


def test_reports_follow_the_payment_by_the_report_delay() -> None:
    feed = ScenarioFeed(FeedSettings(seed=7, cases_per_minute=120, report_delay_s=7.5))
    events = run(feed, 60_000)
    reports = {e.value["report_id"]: e for e in events if e.topic == REPORTS and isinstance(e.value, dict)}
    payments = {e.value["txn_id"]: e for e in events if e.topic == BANK and isinstance(e.value, dict)}

    reported = [case for case in feed.cases if case.reported_at_ms <= T0 + 60_000]
    assert len(reported) > 50
    for case in reported:
        report = victim_report(reports[case.report_id])
        payment = bank_transfer(payments[case.payment_txn_id])
        assert report.reported_at_ms == case.reported_at_ms == case.paid_at_ms + 7_500
        (sent,) = report.transfers
        assert sent == payment
        assert (sent.txn_id, sent.amount, sent.at_ms) == (case.payment_txn_id, case.stolen, case.paid_at_ms)
        assert sent.target == case.mules[0].account
    assert len(reports) == len(reported)


@pytest.mark.parametrize("max_chain_hops", [1, 2, 4])
def test_chains_stay_within_the_configured_hops(max_chain_hops: int) -> None:
    feed = ScenarioFeed(FeedSettings(seed=8, background_tps=0, cases_per_minute=600, max_chain_hops=max_chain_hops))
    run(feed, 120_000, step_ms=1_000)

    assert len(feed.cases) > 1_000
    assert {case.chain_hops for case in feed.cases} == set(range(1, max_chain_hops + 1))
    low, high = LOSS_MAJOR
    for case in feed.cases:
        assert low * 100 <= case.stolen <= high * 100
        hops = [mule.hop for mule in case.mules]
        assert hops == sorted(hops) and hops[:2] == [0, 1] and hops.count(0) == 1
        assert set(hops) == set(range(case.chain_hops + 1))
        assert all(mule.kept >= 0 for mule in case.mules)
        assert sum(mule.kept for mule in case.mules) == case.stolen  # every satang ends up at some mule
    split = [c for c in feed.cases if len(c.mules) > c.chain_hops + 1]
    skimmed = [c for c in feed.cases if any(m.kept for m in c.mules if m.hop < c.chain_hops)]
    assert split and skimmed


def test_pre_theft_outflows_leave_a_mule_before_the_money_arrives() -> None:
    feed = ScenarioFeed(FeedSettings(seed=9, cases_per_minute=120, background_tps=10))
    events = run(feed, 60_000)
    sent = {e.value["txn_id"]: bank_transfer(e) for e in events if e.topic == BANK and isinstance(e.value, dict)}

    checked = 0
    for case in feed.cases:
        arrivals = {mule.account: mule.arrived_ms for mule in case.mules}
        for txn_id in case.pre_theft_txn_ids & sent.keys():
            outflow = sent[txn_id]
            assert outflow.at_ms < arrivals[outflow.source] - 500
            checked += 1
    assert checked > 20


def test_the_ground_truth_is_what_the_money_trail_finds() -> None:
    end = T0 + 180_000
    feed = ScenarioFeed(FeedSettings(seed=10, background_tps=100, cases_per_minute=30, bad_event_every=50))
    trail = MoneyTrail(TraceSettings())
    emitted: set[str] = set()
    for event in run(feed, end - T0, step_ms=100):
        if isinstance(event.value, bytes):
            assert isinstance(decode_bank_transaction(event.value, MAX_BYTES), Rejection)
        elif event.topic == BANK:
            emitted.add(event.value["txn_id"])
            trail.add_transaction(bank_transfer(event))
        else:
            trail.add_report(victim_report(event))
    trail.retrace()

    taints: dict[tuple[object, str], tuple[Taint, set[tuple[str, str, int]]]] = {}
    traced_txns: set[str] = set()
    for trace in trail.traces.values():
        traced_txns.update(step.txn_id for step in trace.steps.values())
        for holding, taint in trace.taints.items():
            taints[holding] = (taint, set(trace.steps))

    complete = [c for c in feed.cases if c.reported_at_ms <= end and max(m.arrived_ms for m in c.mules) <= end]
    assert len(complete) > 50
    for case in complete:
        for mule in case.mules:
            taint, steps = taints[(mule.account, case.currency)]
            assert (taint.received, taint.remaining, taint.hop) == (mule.received, mule.kept, mule.hop)
            assert taint.report_ids == {case.report_id}
            assert (mule.via_txn_id, case.report_id, mule.hop) in steps
        assert case.pre_theft_txn_ids <= emitted

    mules = {(mule.account, case.currency) for case in feed.cases for mule in case.mules}
    pre_theft = set().union(*(case.pre_theft_txn_ids for case in complete))
    assert set(taints) <= mules  # no innocent account is tainted
    assert len(pre_theft) > 10
    assert not pre_theft & traced_txns


@pytest.mark.parametrize(
    "wrong",
    [
        {"max_chain_hops": 0},
        {"max_chain_hops": 5},
        {"background_tps": -1},
        {"report_delay_s": -1},
        {"bad_event_every": -1},
        {"background_accounts": 1},
        {"currency": "baht"},
        {"institutions": ()},
    ],
)
def test_settings_refuse_a_scenario_that_cannot_be_built(wrong: dict[str, object]) -> None:
    with pytest.raises(FeedSettingsError):
        FeedSettings(**wrong)  # type: ignore[arg-type]


def test_bulk_bank_transactions_are_valid_unique_and_in_time_order() -> None:
    raw = list(bulk_bank_transactions(3_000, seed=1, start_ms=T0))

    transfers = []
    for message in raw:
        BankTransaction.model_validate_json(message)
        decoded = decode_bank_transaction(message, MAX_BYTES)
        assert isinstance(decoded, Transfer), decoded
        transfers.append(decoded)
    assert len({t.txn_id for t in transfers}) == 3_000
    assert [t.at_ms for t in transfers] == list(range(T0, T0 + 3_000))
    assert list(bulk_bank_transactions(3_000, seed=1, start_ms=T0)) == raw
    assert list(bulk_bank_transactions(3_000, seed=2, start_ms=T0)) != raw

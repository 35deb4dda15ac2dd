"""The demo feed speaks the v1 contract, replays exactly, and its ground truth is what the trace finds."""

from __future__ import annotations

import math
import random
import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from connectors.synthetic_feed import (
    LOSS_MAJOR,
    FeedEvent,
    FeedSettings,
    FeedSettingsError,
    ScamCase,
    ScenarioFeed,
    bulk_bank_transactions,
)
from processors.money_trail import MoneyTrail, TraceSettings
from processors.records import Report, Transfer
from schemas.decode import Rejection, decode_bank_transaction, decode_victim_report
from schemas.events import BankTransaction, TelecomEvent, VictimReport

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

    holdings = trail.holdings()
    traced_txns = {step.txn_id for trace in holdings.values() for step in trace.trail}

    complete = [c for c in feed.cases if c.reported_at_ms <= end and max(m.arrived_ms for m in c.mules) <= end]
    assert len(complete) > 50
    for case in complete:
        for mule in case.mules:
            trace = holdings[(mule.account, case.currency)]
            assert (trace.received, trace.remaining, trace.hop) == (mule.received, mule.kept, mule.hop)
            assert trace.report_ids == (case.report_id,)
            (via,) = (step for step in trace.trail if step.txn_id == mule.via_txn_id)  # one step per transfer
            assert (via.hop, via.report_ids) == (mule.hop, (case.report_id,))
        assert case.pre_theft_txn_ids <= emitted

    mules = {(mule.account, case.currency) for case in feed.cases for mule in case.mules}
    pre_theft = set().union(*(case.pre_theft_txn_ids for case in complete))
    assert set(holdings) <= mules  # no innocent account is tainted
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


# Telecom: operators' records about the scammers' numbers, next to innocent subscribers' traffic.

TELECOM = "telecom-events"
THAI_MOBILE = re.compile(r"^\+66[89][0-9]{8}$")


def telecom_run(seed: int, duration_ms: int = 120_000, **settings: Any) -> tuple[ScenarioFeed, list[FeedEvent]]:
    feed = ScenarioFeed(FeedSettings(seed=seed, telecom=True, **settings))
    return feed, run(feed, duration_ms, step_ms=100)


def telecom_events(events: list[FeedEvent]) -> list[TelecomEvent]:
    return [TelecomEvent.model_validate_json(orjson.dumps(e.value)) for e in events if e.topic == TELECOM]


def settled(feed: ScenarioFeed, duration_ms: int = 120_000) -> list[ScamCase]:
    """Cases whose whole telecom story lies inside the run: the last contact is 30 s after the report."""
    return [case for case in feed.cases if case.reported_at_ms + 30_000 <= T0 + duration_ms]


def test_every_telecom_event_follows_the_contract_and_is_sent_when_it_happens() -> None:
    _, events = telecom_run(21, cases_per_minute=30)

    records = telecom_events(events)
    for event, record in zip((e for e in events if e.topic == TELECOM), records, strict=True):
        assert record.occurred_at == event.at_ms
        assert event.key == record.msisdn.encode()
        assert record.operator in {"AIS", "TRUE", "DTAC"}
        assert THAI_MOBILE.match(record.msisdn)
        assert record.counterparty_msisdn is None or THAI_MOBILE.match(record.counterparty_msisdn)
    assert {e.topic for e in events} == {BANK, REPORTS, TELECOM}
    assert {r.kind for r in records} == {"call", "sms", "sim_registration", "sim_swap", "data_session"}
    assert len({r.event_id for r in records}) == len(records)
    assert {r.imei is None for r in records} == {r.cell_id is None for r in records} == {True, False}


def test_reports_carry_the_scammer_numbers_and_pages_of_their_case() -> None:
    feed, events = telecom_run(22, cases_per_minute=60)
    reports = {e.value["report_id"]: e.value for e in events if e.topic == REPORTS and isinstance(e.value, dict)}

    assert len(reports) > 50
    for case in feed.cases:
        if case.report_id not in reports:
            continue
        report = VictimReport.model_validate_json(orjson.dumps(reports[case.report_id]))
        assert tuple(report.scammer_phones) == case.scammer_phones
        assert tuple(report.scam_urls) == case.scam_urls
        assert 1 <= len(case.scammer_phones) <= 2
        assert all(THAI_MOBILE.match(phone) for phone in case.scammer_phones)
    assert {len(case.scammer_phones) for case in feed.cases} == {1, 2}
    hosts = {urlsplit(url).hostname for case in feed.cases for url in case.scam_urls}
    assert {"www.facebook.com", "line.me", "t.me"} <= hosts
    assert any(host.endswith(".example") for host in hosts if host)
    assert 0 < sum(bool(case.scam_urls) for case in feed.cases) < len(feed.cases)


def test_each_scammer_number_is_registered_before_it_calls_and_burners_share_the_identity() -> None:
    feed, events = telecom_run(23, cases_per_minute=60)
    records = telecom_events(events)
    registrations = {r.msisdn: r for r in records if r.kind == "sim_registration"}
    first_use = {}
    for record in records:
        if record.kind != "sim_registration":
            first_use.setdefault(record.msisdn, record.occurred_at)

    cases = settled(feed)
    assert len(cases) > 50
    for case in cases:
        for phone in case.scammer_phones:
            assert registrations[phone].registered_id is not None
            assert registrations[phone].occurred_at < first_use.get(phone, math.inf)
        for burner in case.linked_numbers:
            assert burner not in case.scammer_phones
            assert registrations[burner].registered_id == registrations[case.scammer_phones[0]].registered_id
    with_burner = [case for case in cases if case.linked_numbers]
    assert 0 < len(with_burner) < len(cases)
    scam_ids = {registrations[p].registered_id for case in cases for p in case.scammer_phones}
    innocent_ids = {r.registered_id for r in records if r.msisdn not in _scam_numbers(feed)}
    assert innocent_ids and not scam_ids & innocent_ids


def test_the_scammer_calls_the_victim_before_the_payment_and_contacts_the_people_to_warn() -> None:
    feed, events = telecom_run(24, cases_per_minute=60)
    records = telecom_events(events)
    scam_numbers = _scam_numbers(feed)
    # (msisdn, counterparty) -> records: the caller's operator reports one way, the callee's the other.
    contacts: dict[tuple[str, str], list[TelecomEvent]] = {}
    for record in records:
        if record.kind in {"call", "sms"}:
            assert record.counterparty_msisdn is not None
            contacts.setdefault((record.msisdn, record.counterparty_msisdn), []).append(record)

    cases = settled(feed)
    for case in cases:
        assert case.victim_phone is not None and case.victim_phone not in scam_numbers
        calls = [r for p in case.scammer_phones for r in contacts.get((p, case.victim_phone), []) if r.kind == "call"]
        assert calls and min(r.occurred_at for r in calls) < case.paid_at_ms
        assert 1 <= len(case.warned_numbers) <= 3
        assert case.victim_phone not in case.warned_numbers
        for person in (case.victim_phone, *case.warned_numbers):
            assert person not in scam_numbers
            made = [r for p in case.scammer_phones for r in contacts.get((p, person), [])]
            received = [r for p in case.scammer_phones for r in contacts.get((person, p), [])]
            assert made and sorted((r.occurred_at, r.kind) for r in made) == sorted(
                (r.occurred_at, r.kind) for r in received
            )
    assert {len(case.warned_numbers) for case in cases} == {1, 2, 3}
    # Scammers' numbers never talk to each other, and each only to its own case's people.
    owner = {phone: case for case in feed.cases for phone in case.scammer_phones}
    for pair in contacts:
        scammer, other = pair if pair[0] in scam_numbers else pair[::-1]
        assert other not in scam_numbers
        assert scammer not in scam_numbers or other in (owner[scammer].victim_phone, *owner[scammer].warned_numbers)


def test_scam_handsets_and_addresses_never_show_up_in_innocent_traffic() -> None:
    feed, events = telecom_run(25, cases_per_minute=60)
    records = telecom_events(events)
    scam_numbers = _scam_numbers(feed)
    scam_imeis = {case.scammer_imei for case in feed.cases} - {None}
    scam_ips = {ip for case in feed.cases for ip in case.scammer_ips}

    innocent = [r for r in records if r.msisdn not in scam_numbers]
    scam = [r for r in records if r.msisdn in scam_numbers]
    assert scam_imeis and scam_ips and innocent
    assert not {r.imei for r in innocent} & scam_imeis
    assert not {r.ip for r in innocent} & scam_ips
    for case in settled(feed):
        own = [r for r in scam if r.msisdn in case.scammer_phones]
        assert {r.ip for r in own} - {None} == set(case.scammer_ips)
        assert {r.imei for r in own} == {case.scammer_imei}


def test_background_telecom_traffic_runs_at_its_configured_rate() -> None:
    _, quiet = telecom_run(26, 60_000, cases_per_minute=0, background_tps=0, telecom_background_tps=0)
    _, busy = telecom_run(26, 60_000, cases_per_minute=0, background_tps=0, telecom_background_tps=50)
    _, default = telecom_run(26, 60_000, cases_per_minute=0, background_tps=0)

    def activities(events: list[FeedEvent]) -> float:  # a call or a message is reported twice
        return sum(1 if e.value["kind"] not in {"call", "sms"} else 0.5 for e in events if isinstance(e.value, dict))

    assert quiet == []
    assert 2_700 < activities(busy) < 3_300
    assert 1_000 < activities(default) < 1_400  # 20 per second unless told otherwise
    assert len(default) > 1.8 * activities(default)


def test_bad_messages_replace_bank_transactions_only() -> None:
    _, events = telecom_run(27, 5_000, cases_per_minute=0, bad_event_every=7)

    bank = [e for e in events if e.topic == BANK]
    assert len(bank) > 500 and len(events) > len(bank)
    assert [n for n, e in enumerate(bank, start=1) if isinstance(e.value, bytes)] == list(range(7, len(bank) + 1, 7))
    assert all(isinstance(e.value, dict) for e in events if e.topic == TELECOM)


def test_telecom_replays_exactly_and_leaves_money_and_reports_as_they_were() -> None:
    settings = {"seed": 28, "cases_per_minute": 40, "bad_event_every": 50}
    steady = ScenarioFeed(FeedSettings(telecom=True, **settings))  # type: ignore[arg-type]
    steady_events = run(steady, 90_000, step_ms=50)
    jittery = ScenarioFeed(FeedSettings(telecom=True, **settings))  # type: ignore[arg-type]
    polls = random.Random(2)
    jittery_events, now = jittery.events_until(T0), T0
    while now < T0 + 90_000:
        now = min(now + polls.randint(1, 900), T0 + 90_000)
        jittery_events += jittery.events_until(now)
    without = ScenarioFeed(FeedSettings(**settings))  # type: ignore[arg-type]
    without_events = run(without, 90_000, step_ms=50)

    assert jittery_events == steady_events
    assert jittery.cases == steady.cases
    assert [e for e in steady_events if e.topic != TELECOM] == without_events
    for with_telecom, plain in zip(steady.cases, without.cases, strict=True):
        assert (
            replace(
                with_telecom, linked_numbers=(), warned_numbers=(), victim_phone=None, scammer_imei=None, scammer_ips=()
            )
            == plain
        )
        assert not plain.warned_numbers and plain.victim_phone is None
    other = ScenarioFeed(FeedSettings(telecom=True, **{**settings, "seed": 29}))  # type: ignore[arg-type]
    assert run(other, 90_000, step_ms=50) != steady_events


@pytest.mark.parametrize("wrong", [{"telecom_background_tps": -1}, {"telecom_subscribers": 3}])
def test_settings_refuse_telecom_traffic_that_cannot_be_built(wrong: dict[str, object]) -> None:
    with pytest.raises(FeedSettingsError):
        FeedSettings(telecom=True, **wrong)  # type: ignore[arg-type]


def _scam_numbers(feed: ScenarioFeed) -> set[str]:
    return {phone for case in feed.cases for phone in (*case.scammer_phones, *case.linked_numbers)}

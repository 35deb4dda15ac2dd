"""The scam world: replays exactly, speaks the wire contract, and never loses or makes a baht."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from connectors.ledger import Ledger, Timeline
from connectors.scam_world import THB, USDT, ScamWorld, WireEvent
from connectors.scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario, small_town
from pipeline.topics import BANK_TRANSACTIONS, TELECOM_EVENTS, VICTIM_REPORTS
from schemas.decode import Rejection, decode_bank_transaction, decode_telecom_event, decode_victim_report

MAX_BYTES = 65_536


@pytest.fixture(scope="module")
def world() -> tuple[ScamWorld, list[WireEvent]]:
    world = ScamWorld(small_town())
    return world, list(world.events())


def test_the_default_scenario_loads_and_says_where_its_figures_come_from() -> None:
    scenario = load_scenario()

    assert scenario.reports.median_delay.total_seconds() == 18 * 3600
    assert scenario.gangs.forward_delay.median.total_seconds() == 180
    assert max(scenario.gangs.chain_hops) == 5
    assert "Bank of Thailand" in DEFAULT_SCENARIO.read_text()


def test_a_scenario_can_be_json_and_a_bad_one_says_what_is_wrong(tmp_path: Path) -> None:
    data = load_scenario().model_dump(mode="json")
    (tmp_path / "mine.json").write_text(json.dumps({**data, "seed": 42}))
    assert load_scenario(tmp_path / "mine.json").seed == 42

    (tmp_path / "bad.json").write_text(json.dumps({**data, "attack_days": -1}))
    with pytest.raises(ScenarioError, match="attack_days"):
        load_scenario(tmp_path / "bad.json")
    (tmp_path / "broken.yaml").write_text("seed: [1,")
    with pytest.raises(ScenarioError, match=r"broken\.yaml"):
        load_scenario(tmp_path / "broken.yaml")


def test_the_same_seed_replays_the_same_world(world: tuple[ScamWorld, list[WireEvent]]) -> None:
    _, events = world
    again = list(ScamWorld(small_town()).events())

    assert [(e.topic.name, e.value, e.at_ms) for e in again] == [(e.topic.name, e.value, e.at_ms) for e in events]
    assert [e.value for e in ScamWorld(small_town(seed=4)).events()] != [e.value for e in events]


def test_events_come_in_event_time_order_and_every_one_is_valid(world: tuple[ScamWorld, list[WireEvent]]) -> None:
    scam_world, events = world
    decoders = {
        BANK_TRANSACTIONS.name: lambda raw: decode_bank_transaction(raw, MAX_BYTES),
        VICTIM_REPORTS.name: lambda raw: decode_victim_report(raw, MAX_BYTES, received_at_ms=0),
        TELECOM_EVENTS.name: lambda raw: decode_telecom_event(raw, MAX_BYTES),
    }

    assert [e.at_ms for e in events] == sorted(e.at_ms for e in events)
    for event in events:
        assert not isinstance(decoders[event.topic.name](event.value), Rejection), event.value
    reports = [e for e in events if e.case is not None]
    assert reports and {e.topic.name for e in reports} == {VICTIM_REPORTS.name}
    assert len(reports) == sum(1 for case in scam_world.cases if case.reports)


def test_money_is_neither_lost_nor_made(world: tuple[ScamWorld, list[WireEvent]]) -> None:
    ledger = world[0].ledger

    thb = sum(ledger.balance(account, currency) for account, currency in ledger.holdings() if currency == THB)
    usdt = sum(ledger.balance(account, currency) for account, currency in ledger.holdings() if currency == USDT)
    assert thb + ledger.left.get(THB, 0) - ledger.converted.get(THB, 0) == ledger.opened[THB]
    assert usdt + ledger.left.get(USDT, 0) == ledger.converted.get(USDT, 0) > 0


def test_every_stolen_baht_is_in_the_system_or_cashed_out(world: tuple[ScamWorld, list[WireEvent]]) -> None:
    scam_world, _ = world
    ledger = scam_world.ledger
    routes: set[str] = set()
    for case in scam_world.cases:
        cashed = ledger.cashed_out.get(case.number, {})
        routes |= cashed.keys()
        paid = sum(round(float(transfer["amount"]) * 100) for transfer in case.transfers)
        assert 0 < ledger.paid[case.number] == paid <= sum(case.losses)  # a victim pays what they have
        assert ledger.paid[case.number] == ledger.in_system(case.number) + sum(cashed.values())
        assert sum(lot.thb for _, lot in ledger.lots_of(case.number)) == ledger.in_system(case.number)
        for (account, _), lot in ledger.lots_of(case.number):
            assert ledger.is_gang(account)
            assert lot.path[0].kind == "payment" and lot.path[-1].target == account
    assert {"atm", "merchant", "exchange"} <= routes


def test_reports_arrive_with_the_published_median_delay() -> None:
    scenario = load_scenario().scaled(0.05)
    gangs = scenario.gangs.model_copy(update={"victims_per_day": 1000})  # only planned: no event is generated
    cases = [case for case in ScamWorld(scenario.model_copy(update={"seed": 11, "gangs": gangs})).cases if case.reports]

    delays_h = [case.report_delay_ms / 3_600_000 for case in cases]
    assert len(delays_h) > 1000
    assert 16 < statistics.median(delays_h) < 20
    assert 0.05 < sum(1 for d in delays_h if d < 0.25) / len(delays_h) < 0.15  # the fast minority
    assert max(delays_h) <= 8 * 24


def test_a_gang_account_pays_the_case_it_is_passing_on_first() -> None:
    ledger = Ledger()
    victims = [("bank", "KBNK", f"victim-{n}") for n in range(2)]
    mule, next_mule = ("bank", "SCBK", "mule"), ("bank", "BBLK", "next")
    for victim in victims:
        ledger.open(victim, "person", THB, 10_000, 0)
    ledger.open(mule, "mule", THB, 500, 0)
    ledger.open(next_mule, "mule", THB, 0, 0)
    ledger.transfer("p0", victims[0], mule, THB, 3_000, 10, theft_case=0)
    ledger.transfer("p1", victims[1], mule, THB, 2_000, 20, theft_case=1)

    assert ledger.transfer("f1", mule, next_mule, THB, 2_500, 30, case=1) == 2_500
    assert ledger.stolen_at((next_mule, THB), 1, 30) == (2_000, 2_000)
    assert ledger.stolen_at((next_mule, THB), 0, 30) == (500, 500)  # then the oldest other
    assert ledger.stolen_at((mule, THB), 0, 25) == (3_000, 3_000)
    assert ledger.withdraw(mule, THB, 99_999, 40, on_feed=False) == 3_000  # the rest of case 0 and the mule's 500
    assert ledger.cashed_out[0] == {"atm": 2_500} and ledger.left[THB] == 3_000
    assert ledger.cash_withdrawn((mule, THB), 41, {0}) and not ledger.cash_withdrawn((mule, THB), 40, {0})


def test_a_withdrawal_the_bank_reports_is_on_the_feed_and_the_trace_can_know_it() -> None:
    ledger = Ledger()
    victim, mule = ("bank", "KBNK", "victim"), ("bank", "SCBK", "mule")
    ledger.open(victim, "person", THB, 10_000, 0)
    ledger.open(mule, "mule", THB, 0, 0)
    ledger.transfer("p0", victim, mule, THB, 3_000, 10, theft_case=0)

    assert ledger.withdraw(mule, THB, 1_000, 20, on_feed=True) == 1_000
    assert ledger.cashed_out[0] == {"atm": 1_000}
    assert not ledger.cash_withdrawn((mule, THB), 21, {0})  # not a loss the trace could not see


def test_a_timeline_answers_for_any_moment() -> None:
    timeline = Timeline()
    for at, value in ((10, 5), (20, 0), (20, 7), (30, 2)):
        timeline.set(at, value)

    assert [timeline.at(t) for t in (0, 10, 19, 20, 29, 30, 99)] == [0, 5, 5, 7, 7, 2, 2]
    assert timeline.lowest(10, 29) == 5 and timeline.lowest(15, 30) == 2 and timeline.highest(0, 25) == 7


def test_withdrawals_the_banks_report_are_on_the_feed_as_transfers_to_cash(
    world: tuple[ScamWorld, list[WireEvent]],
) -> None:
    scam_world, events = world
    withdrawals = [
        decoded
        for e in events
        if e.topic.name == BANK_TRANSACTIONS.name
        and (decoded := decode_bank_transaction(e.value, MAX_BYTES))
        and not isinstance(decoded, Rejection)
        and decoded.target[0] == "cash"
    ]
    assert len(withdrawals) == scam_world.stats["atm withdrawals (on the feed)"] > 0
    assert all(w.target[1] == w.source[1] for w in withdrawals)  # paid out by the account's own institution

    hidden = small_town()
    hidden = hidden.model_copy(
        update={"population": hidden.population.model_copy(update={"withdrawals_on_feed": False})}
    )
    off_feed = ScamWorld(hidden)
    assert not any(b'"cash"' in e.value for e in off_feed.events())
    assert off_feed.stats["atm withdrawals (off the feed)"] > 0

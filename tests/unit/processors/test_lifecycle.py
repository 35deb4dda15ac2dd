"""Action lifecycle (processors/lifecycle.py): acks, SLAs, escalation, money held and open actions."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.lifecycle import AckOutcome, AckRefused, ActionLifecycle, SlaPolicy
from processors.records import Ack

MINUTE = 60_000
T0 = 1_800_000_000_000  # when the first version goes out
REPORT_MS = T0 - 7 * MINUTE  # when the report behind it reached us
CRITICAL, HIGH, MEDIUM, LOW = 90, 70, 50, 20


def issue(
    life: ActionLifecycle,
    action_id: str = "frz-1",
    version: int = 1,
    *,
    priority: int = CRITICAL,
    at_ms: int = T0,
    active: bool = True,
    addressee: str = "KBANK",
    kind: str = "freeze",
    currency: str | None = "THB",
    report_ms: int = REPORT_MS,
) -> None:
    life.issued(
        action_id=action_id,
        version=version,
        kind=kind,
        addressee=addressee,
        priority=priority,
        currency=currency,
        active=active,
        issued_at_ms=at_ms,
        report_received_at_ms=report_ms,
    )


def ack(
    action_id: str = "frz-1",
    version: int = 1,
    status: str = "executed",
    amount: str | None = None,
    *,
    addressee: str = "KBANK",
    acked_at_ms: int = T0 + MINUTE,
    received_at_ms: int | None = None,
) -> Ack:
    return Ack(
        action_id=action_id,
        version=version,
        addressee=addressee,
        status=status,
        amount_held=Decimal(amount) if amount is not None else None,
        acked_at_ms=acked_at_ms,
        received_at_ms=received_at_ms if received_at_ms is not None else acked_at_ms + 50,
        note="",
    )


def accepted(life: ActionLifecycle, an_ack: Ack) -> AckOutcome:
    outcome = life.acknowledge(an_ack)
    assert isinstance(outcome, AckOutcome), outcome
    return outcome


def refused(life: ActionLifecycle, an_ack: Ack) -> AckRefused:
    outcome = life.acknowledge(an_ack)
    assert isinstance(outcome, AckRefused), outcome
    return outcome


# --- SLA policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "deadline_ms"),
    [
        (100, 5 * MINUTE),
        (80, 5 * MINUTE),
        (79, 15 * MINUTE),
        (60, 15 * MINUTE),
        (59, 60 * MINUTE),
        (40, 60 * MINUTE),
        (39, 240 * MINUTE),
        (0, 240 * MINUTE),
    ],
)
def test_the_default_sla_is_minutes_for_the_top_band_and_hours_for_the_bottom(priority: int, deadline_ms: int) -> None:
    assert SlaPolicy().deadline_ms(priority) == deadline_ms


def test_the_sla_is_configurable_and_must_be_positive() -> None:
    policy = SlaPolicy(critical_ms=1_000, high_ms=2_000, medium_ms=3_000, low_ms=4_000)

    assert [policy.deadline_ms(p) for p in (CRITICAL, HIGH, MEDIUM, LOW)] == [1_000, 2_000, 3_000, 4_000]
    with pytest.raises(ValueError, match="medium"):
        SlaPolicy(medium_ms=0)


# --- due: the SLA clock -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "deadline_ms"),
    [(CRITICAL, 5 * MINUTE), (HIGH, 15 * MINUTE), (MEDIUM, 60 * MINUTE), (LOW, 240 * MINUTE)],
)
def test_an_unacknowledged_action_is_due_just_after_its_bands_deadline(priority: int, deadline_ms: int) -> None:
    life = ActionLifecycle()
    issue(life, priority=priority)

    assert life.due(T0) == []
    assert life.due(T0 + deadline_ms) == []  # executed at the deadline is within it
    assert life.due(T0 + deadline_ms + 1) == ["frz-1"]


def test_a_configured_sla_decides_when_an_action_is_due() -> None:
    life = ActionLifecycle(SlaPolicy(critical_ms=30_000))
    issue(life, priority=CRITICAL)

    assert life.due(T0 + 30_000) == []
    assert life.due(T0 + 30_001) == ["frz-1"]


def test_due_is_a_question_not_a_queue() -> None:
    life = ActionLifecycle()
    issue(life)

    later = T0 + 6 * MINUTE
    assert life.due(later) == ["frz-1"]
    assert life.due(later) == ["frz-1"]
    assert life.due(later + MINUTE) == ["frz-1"]


def test_due_actions_come_highest_priority_first_then_by_action_id() -> None:
    life = ActionLifecycle()
    issue(life, "frz-b", priority=LOW, at_ms=T0 - 300 * MINUTE)
    issue(life, "frz-c", priority=CRITICAL)
    issue(life, "frz-a", priority=CRITICAL)
    issue(life, "frz-d", priority=95)
    issue(life, "frz-e", priority=HIGH, at_ms=T0 - 30 * MINUTE)

    assert life.due(T0 + 6 * MINUTE) == ["frz-d", "frz-a", "frz-c", "frz-e", "frz-b"]


def test_a_new_version_restarts_the_clock() -> None:
    life = ActionLifecycle()
    issue(life, version=1, at_ms=T0)
    issue(life, version=2, at_ms=T0 + 4 * MINUTE)  # e.g. more money traced here

    assert life.due(T0 + 5 * MINUTE + 1) == []
    assert life.due(T0 + 9 * MINUTE) == []
    assert life.due(T0 + 9 * MINUTE + 1) == ["frz-1"]


def test_an_escalated_version_leaves_due_and_comes_back_only_after_its_own_sla() -> None:
    life = ActionLifecycle()
    issue(life, version=1, priority=HIGH)
    missed = T0 + 15 * MINUTE + 1
    assert life.due(missed) == ["frz-1"]

    # The caller re-issues through the action book: priority +10, now critical.
    issue(life, version=2, priority=HIGH + 10, at_ms=missed)

    assert life.due(missed) == []
    assert life.due(missed + 5 * MINUTE) == []
    assert life.due(missed + 5 * MINUTE + 1) == ["frz-1"]


def test_a_version_issued_again_does_not_restart_the_clock() -> None:
    life = ActionLifecycle()
    issue(life, version=1, at_ms=T0)
    issue(life, version=1, at_ms=T0 + 4 * MINUTE)  # redelivered or replayed

    assert life.due(T0 + 5 * MINUTE + 1) == ["frz-1"]


def test_an_older_version_arriving_late_changes_nothing() -> None:
    life = ActionLifecycle()
    issue(life, version=2, at_ms=T0, priority=CRITICAL)
    issue(life, version=1, at_ms=T0 + 4 * MINUTE, priority=LOW)

    assert life.due(T0 + 5 * MINUTE + 1) == ["frz-1"]
    assert life.open_by_band()["critical"] == 1


@pytest.mark.parametrize("status", ["executed", "partial", "rejected", "not_found"])
def test_any_ack_of_the_latest_version_stops_escalation(status: str) -> None:
    life = ActionLifecycle()
    issue(life)
    assert life.due(T0 + 6 * MINUTE) == ["frz-1"]

    accepted(life, ack(status=status, acked_at_ms=T0 + 7 * MINUTE))

    assert life.due(T0 + 7 * MINUTE) == []
    assert life.due(T0 + 600 * MINUTE) == []


@pytest.mark.parametrize("status", ["executed", "partial", "rejected", "not_found"])
def test_an_ack_of_an_older_version_does_not_stop_escalation(status: str) -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    issue(life, version=2, at_ms=T0 + MINUTE)

    accepted(life, ack(version=1, status=status, acked_at_ms=T0 + 2 * MINUTE))

    assert life.due(T0 + 6 * MINUTE + 1) == ["frz-1"]


def test_an_ack_before_the_deadline_means_the_action_is_never_due() -> None:
    life = ActionLifecycle()
    issue(life)
    accepted(life, ack(acked_at_ms=T0 + MINUTE))

    assert life.due(T0 + 6 * MINUTE) == []


def test_an_executed_action_escalates_again_when_a_new_version_goes_unanswered() -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    accepted(life, ack(version=1))
    issue(life, version=2, at_ms=T0 + 60 * MINUTE)  # the trace found more money here

    assert life.due(T0 + 65 * MINUTE + 1) == ["frz-1"]


def test_a_released_version_closes_the_action() -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    issue(life, version=2, active=False, priority=0, at_ms=T0 + MINUTE)

    assert life.due(T0 + 1000 * MINUTE) == []
    assert life.open_by_band() == {"critical": 0, "high": 0, "medium": 0, "low": 0}


def test_a_released_action_found_due_earlier_is_no_longer_due() -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    assert life.due(T0 + 6 * MINUTE) == ["frz-1"]

    issue(life, version=2, active=False, priority=0, at_ms=T0 + 6 * MINUTE)

    assert life.due(T0 + 6 * MINUTE) == []


# --- acks: refusals ---------------------------------------------------------------------------


def test_an_ack_for_an_action_we_never_issued_is_refused() -> None:
    life = ActionLifecycle()
    issue(life, "frz-1")

    refusal = refused(life, ack("frz-404"))

    assert refusal.reason == "unknown_action"
    assert "frz-404" in refusal.error


@pytest.mark.parametrize("version", [0, 3])
def test_an_ack_for_a_version_never_issued_is_refused(version: int) -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    issue(life, version=2, at_ms=T0 + MINUTE)

    refusal = refused(life, ack(version=version))

    assert refusal.reason == "unknown_version"
    assert f"no version {version}" in refusal.error
    assert "latest issued is 2" in refusal.error


def test_an_ack_from_another_institution_is_answered_as_if_the_action_did_not_exist() -> None:
    """Action ids follow from account numbers: a different answer would tell a prober which accounts are frozen."""
    life = ActionLifecycle()
    issue(life, addressee="KBANK")
    assert life.due(T0 + 6 * MINUTE) == ["frz-1"]

    refusal = refused(life, ack(addressee="SCB", amount="500.00"))
    never_issued = refused(life, ack(action_id="frz-2", addressee="SCB", amount="500.00"))

    assert refusal.reason == never_issued.reason == "unknown_action"
    assert refusal.error == never_issued.error.replace("frz-2", "frz-1")
    assert "KBANK" not in refusal.error and "version" not in refusal.error
    assert life.due(T0 + 6 * MINUTE) == ["frz-1"]
    assert life.money_held() == {}


def test_an_ack_with_a_status_outside_the_contract_is_refused() -> None:
    life = ActionLifecycle()
    issue(life)

    assert refused(life, ack(status="done")).reason == "unknown_status"


def test_a_refused_ack_changes_nothing() -> None:
    life = ActionLifecycle()
    issue(life)
    refused(life, ack(version=2, amount="500.00"))

    assert life.due(T0 + 6 * MINUTE) == ["frz-1"]
    assert life.money_held() == {}
    assert life.open_by_band()["critical"] == 1


# --- acks: outcomes ---------------------------------------------------------------------------


def test_an_accepted_ack_says_what_it_was_about() -> None:
    life = ActionLifecycle()
    issue(life, "sus-1", kind="suspension", addressee="AIS", currency=None)

    outcome = accepted(life, ack("sus-1", status="rejected", addressee="AIS"))

    assert outcome == AckOutcome(
        action_id="sus-1",
        version=1,
        status="rejected",
        addressee="AIS",
        kind="suspension",
        first_execution=False,
        report_to_execution_ms=None,
        held_change=None,
    )


def test_report_to_execution_is_measured_once_at_the_first_execution() -> None:
    life = ActionLifecycle()
    issue(life, version=1, report_ms=REPORT_MS)

    rejected = accepted(life, ack(status="rejected", received_at_ms=T0 + MINUTE))
    issue(life, version=2, at_ms=T0 + 2 * MINUTE, report_ms=REPORT_MS + MINUTE)
    partial = accepted(life, ack(version=2, status="partial", amount="10.00", received_at_ms=T0 + 3 * MINUTE))
    executed = accepted(life, ack(version=2, amount="20.00", received_at_ms=T0 + 4 * MINUTE))

    assert (rejected.first_execution, rejected.report_to_execution_ms) == (False, None)
    # From the first report behind the action, whichever version carried it.
    assert (partial.first_execution, partial.report_to_execution_ms) == (True, T0 + 3 * MINUTE - REPORT_MS)
    assert (executed.first_execution, executed.report_to_execution_ms) == (False, None)


def test_an_executed_ack_of_an_older_version_is_still_the_first_execution() -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    issue(life, version=2, at_ms=T0 + MINUTE)

    outcome = accepted(life, ack(version=1, received_at_ms=T0 + 2 * MINUTE))

    assert outcome.first_execution
    assert outcome.report_to_execution_ms == T0 + 2 * MINUTE - REPORT_MS


# --- money held -------------------------------------------------------------------------------


def test_a_later_ack_replaces_the_amount_held_it_does_not_add_to_it() -> None:
    life = ActionLifecycle()
    issue(life)

    first = accepted(life, ack(status="partial", amount="500.00", acked_at_ms=T0 + MINUTE))
    more = accepted(life, ack(status="executed", amount="800.00", acked_at_ms=T0 + 2 * MINUTE))
    less = accepted(life, ack(status="partial", amount="600.00", acked_at_ms=T0 + 3 * MINUTE))

    assert first.held_change == ("KBANK", "THB", Decimal("500.00"))
    assert more.held_change == ("KBANK", "THB", Decimal("300.00"))
    assert less.held_change == ("KBANK", "THB", Decimal("-200.00"))
    assert life.money_held() == {("KBANK", "THB"): Decimal("600.00")}


def test_money_held_is_summed_over_actions_per_institution_and_currency() -> None:
    life = ActionLifecycle()
    issue(life, "frz-1", addressee="KBANK", currency="THB")
    issue(life, "frz-2", addressee="KBANK", currency="THB")
    issue(life, "frz-3", addressee="KBANK", currency="USD")
    issue(life, "frz-4", addressee="SCB", currency="THB")
    issue(life, "frz-5", addressee="BINANCE", currency="ETH")

    accepted(life, ack("frz-1", amount="1000.00"))
    accepted(life, ack("frz-2", status="partial", amount="250.50"))
    accepted(life, ack("frz-3", amount="40.00"))
    accepted(life, ack("frz-4", amount="99.99", addressee="SCB"))
    # 15 + 18 decimals: more digits than decimal's default precision keeps.
    accepted(life, ack("frz-5", amount="123456789012345.123456789012345678", addressee="BINANCE"))

    assert life.money_held() == {
        ("KBANK", "THB"): Decimal("1250.50"),
        ("KBANK", "USD"): Decimal("40.00"),
        ("SCB", "THB"): Decimal("99.99"),
        ("BINANCE", "ETH"): Decimal("123456789012345.123456789012345678"),
    }


def test_an_ack_of_an_older_version_still_counts_for_money_held() -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    issue(life, version=2, at_ms=T0 + MINUTE)

    outcome = accepted(life, ack(version=1, status="partial", amount="500.00"))

    assert outcome.held_change == ("KBANK", "THB", Decimal("500.00"))
    assert life.money_held() == {("KBANK", "THB"): Decimal("500.00")}


def test_a_late_ack_of_an_older_version_does_not_overwrite_a_newer_amount() -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    issue(life, version=2, at_ms=T0 + MINUTE)
    accepted(life, ack(version=2, amount="700.00", acked_at_ms=T0 + 2 * MINUTE))

    late = accepted(life, ack(version=1, status="partial", amount="300.00", acked_at_ms=T0 + 90 * 1000))

    assert late.held_change is None
    assert life.money_held() == {("KBANK", "THB"): Decimal("700.00")}


@pytest.mark.parametrize("status", ["rejected", "not_found"])
def test_a_refusal_by_the_institution_does_not_change_money_held(status: str) -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    accepted(life, ack(version=1, amount="500.00"))
    issue(life, version=2, at_ms=T0 + MINUTE)

    outcome = accepted(life, ack(version=2, status=status, acked_at_ms=T0 + 2 * MINUTE))

    assert outcome.held_change is None
    assert life.money_held() == {("KBANK", "THB"): Decimal("500.00")}


def test_executed_without_an_amount_leaves_money_held_as_it_was() -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    accepted(life, ack(version=1, status="partial", amount="500.00"))
    issue(life, version=2, at_ms=T0 + MINUTE)

    outcome = accepted(life, ack(version=2, acked_at_ms=T0 + 2 * MINUTE))

    assert outcome.held_change is None
    assert life.money_held() == {("KBANK", "THB"): Decimal("500.00")}


def test_an_executed_release_lifts_the_hold() -> None:
    life = ActionLifecycle()
    issue(life, version=1)
    accepted(life, ack(version=1, amount="500.00"))
    issue(life, version=2, active=False, priority=0, at_ms=T0 + MINUTE)
    assert life.money_held() == {("KBANK", "THB"): Decimal("500.00")}  # until the bank confirms

    outcome = accepted(life, ack(version=2, acked_at_ms=T0 + 2 * MINUTE))

    assert outcome.held_change == ("KBANK", "THB", Decimal("-500.00"))
    assert life.money_held() == {("KBANK", "THB"): Decimal(0)}


def test_acks_for_suspensions_never_count_as_money() -> None:
    life = ActionLifecycle()
    issue(life, "sus-1", kind="suspension", addressee="AIS", currency=None)

    outcome = accepted(life, ack("sus-1", amount="100.00", addressee="AIS"))

    assert outcome.held_change is None
    assert life.money_held() == {}


# --- duplicates -------------------------------------------------------------------------------


def test_a_duplicate_ack_is_accepted_but_counts_for_nothing() -> None:
    life = ActionLifecycle()
    issue(life)
    once = accepted(life, ack(status="partial", amount="500.00"))

    twice = accepted(life, ack(status="partial", amount="500.00", received_at_ms=T0 + 9 * MINUTE))

    assert not once.duplicate
    assert once.first_execution
    assert twice.duplicate
    assert (twice.first_execution, twice.report_to_execution_ms, twice.held_change) == (False, None, None)
    assert life.money_held() == {("KBANK", "THB"): Decimal("500.00")}


def test_a_redelivered_batch_of_acks_leaves_the_latest_amount() -> None:
    life = ActionLifecycle()
    issue(life)
    batch = [
        ack(status="partial", amount="500.00", acked_at_ms=T0 + MINUTE),
        ack(status="executed", amount="800.00", acked_at_ms=T0 + 2 * MINUTE),
    ]
    for an_ack in batch:
        accepted(life, an_ack)

    redelivered = [accepted(life, an_ack) for an_ack in batch]

    assert all(outcome.duplicate for outcome in redelivered)
    assert life.money_held() == {("KBANK", "THB"): Decimal("800.00")}


def test_the_same_status_acknowledged_again_later_is_a_new_ack() -> None:
    life = ActionLifecycle()
    issue(life)
    accepted(life, ack(status="partial", amount="500.00", acked_at_ms=T0 + MINUTE))

    again = accepted(life, ack(status="partial", amount="500.00", acked_at_ms=T0 + 2 * MINUTE))

    assert not again.duplicate
    assert again.held_change is None  # same amount: nothing changed
    assert life.money_held() == {("KBANK", "THB"): Decimal("500.00")}


# --- open actions -----------------------------------------------------------------------------


def test_open_actions_are_counted_by_band_with_every_band_present() -> None:
    life = ActionLifecycle()
    assert life.open_by_band() == {"critical": 0, "high": 0, "medium": 0, "low": 0}

    issue(life, "frz-1", priority=CRITICAL)
    issue(life, "frz-2", priority=CRITICAL)
    issue(life, "frz-3", priority=HIGH)
    issue(life, "frz-4", priority=LOW)
    issue(life, "frz-5", priority=MEDIUM, active=False)

    assert life.open_by_band() == {"critical": 2, "high": 1, "medium": 0, "low": 1}


@pytest.mark.parametrize(("status", "still_open"), [("executed", 0), ("partial", 0), ("rejected", 1), ("not_found", 1)])
def test_executed_and_partial_close_an_action_rejected_and_not_found_leave_it_to_the_war_room(
    status: str, still_open: int
) -> None:
    life = ActionLifecycle()
    issue(life, priority=HIGH)

    accepted(life, ack(status=status))

    assert life.open_by_band()["high"] == still_open
    assert life.due(T0 + 1000 * MINUTE) == []


def test_open_actions_follow_the_latest_version() -> None:
    life = ActionLifecycle()
    issue(life, version=1, priority=HIGH)
    accepted(life, ack(version=1))
    assert life.open_by_band()["high"] == 0

    issue(life, version=2, priority=CRITICAL, at_ms=T0 + MINUTE)  # new evidence, new version: open again
    assert life.open_by_band() == {"critical": 1, "high": 0, "medium": 0, "low": 0}

    accepted(life, ack(version=1, acked_at_ms=T0 + 2 * MINUTE))  # an older version's ack does not close it
    assert life.open_by_band()["critical"] == 1

    issue(life, version=3, priority=0, active=False, at_ms=T0 + 3 * MINUTE)
    assert life.open_by_band() == {"critical": 0, "high": 0, "medium": 0, "low": 0}


# --- misuse -----------------------------------------------------------------------------------


def test_an_action_id_cannot_change_what_it_acts_on() -> None:
    life = ActionLifecycle()
    issue(life, currency="THB")

    with pytest.raises(ValueError, match="derived from what they act on"):
        issue(life, version=2, currency="USD")


# --- restart: replaying the topics rebuilds the state ------------------------------------------


@dataclass(frozen=True)
class Issue:
    action_id: str
    version: int
    priority: int
    active: bool
    at_ms: int


Event = Issue | Ack


def apply(life: ActionLifecycle, event: Event) -> AckOutcome | AckRefused | None:
    if isinstance(event, Issue):
        issue(life, event.action_id, event.version, priority=event.priority, active=event.active, at_ms=event.at_ms)
        return None
    return life.acknowledge(event)


def at_ms(event: Event) -> int:
    return event.at_ms if isinstance(event, Issue) else event.acked_at_ms


def state(life: ActionLifecycle, now_ms: int) -> tuple[object, ...]:
    return (life.money_held(), life.open_by_band(), life.due(now_ms), len(life))


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """Interleaved versions and acks for a few actions: active versions, perhaps a final release."""
    events: list[Event] = []
    latest: dict[str, int] = {}
    released: set[str] = set()
    clock = T0
    for _ in range(draw(st.integers(1, 40))):
        clock += draw(st.integers(0, 20 * MINUTE))
        action_id = draw(st.sampled_from(["frz-a", "frz-b", "frz-c"]))
        known = latest.get(action_id, 0)
        if known and draw(st.booleans()):
            version = draw(st.integers(1, known))
            status = draw(st.sampled_from(["executed", "partial", "rejected", "not_found"]))
            amount = draw(st.sampled_from([None, "100.00", "250.00", "999.99"]))
            events.append(ack(action_id, version, status, amount, acked_at_ms=clock))
            if draw(st.booleans()):  # redelivered
                events.append(events[draw(st.integers(0, len(events) - 1))])
        elif action_id not in released:
            latest[action_id] = known + 1
            active = draw(st.integers(0, 5)) > 0
            if not active:
                released.add(action_id)
            priority = draw(st.integers(0, 100))
            events.append(Issue(action_id, known + 1, priority, active, clock))
    return events


@given(histories(), st.integers(0, 600 * MINUTE))
def test_replaying_the_topics_rebuilds_the_same_state(events: list[Event], after_ms: int) -> None:
    live = ActionLifecycle()
    executed_live: set[str] = set()
    for event in events:
        outcome = apply(live, event)
        if isinstance(outcome, AckOutcome) and outcome.first_execution:
            executed_live.add(outcome.action_id)
        live.due(at_ms(event))  # the worker asks every second; what it found must not skew the state
    now_ms = max(at_ms(e) for e in events) + after_ms

    issues = [e for e in events if isinstance(e, Issue)]
    acks = [e for e in events if isinstance(e, Ack)]
    # What a compacted actions topic keeps: the latest version of each action.
    compacted: dict[str, Issue] = {}
    for event in issues:
        if event.action_id not in compacted or event.version > compacted[event.action_id].version:
            compacted[event.action_id] = event
    for replayed_issues in (issues, list(compacted.values())):
        replayed = ActionLifecycle()
        executed_replayed: set[str] = set()
        replay: list[Event] = [*replayed_issues, *acks]
        for event in replay:
            outcome = apply(replayed, event)
            assert not isinstance(outcome, AckRefused), outcome
            if isinstance(outcome, AckOutcome) and outcome.first_execution:
                executed_replayed.add(outcome.action_id)

        assert state(replayed, now_ms) == state(live, now_ms)
        assert executed_replayed == executed_live


# --- expiry -----------------------------------------------------------------------------------


def test_forgetting_actions_takes_their_money_open_count_and_deadlines_away() -> None:
    life = ActionLifecycle()
    issue(life, "frz-1")
    issue(life, "frz-2", priority=HIGH)
    issue(life, "frz-3", priority=LOW)
    accepted(life, ack("frz-1", amount="400.00"))
    accepted(life, ack("frz-2", amount="100.00"))
    assert life.money_held() == {("KBANK", "THB"): Decimal("500.00")}
    assert life.open_by_band()["low"] == 1 and life.due(T0 + 300 * MINUTE) == ["frz-3"]

    assert life.forget(["frz-1", "frz-3", "never-issued"]) == 2

    assert life.money_held() == {("KBANK", "THB"): Decimal("100.00")}  # frz-1's hold ran out; frz-2's still counts
    assert life.open_by_band() == {"critical": 0, "high": 0, "medium": 0, "low": 0}
    assert life.due(T0 + 300 * MINUTE) == []
    assert refused(life, ack("frz-1", amount="400.00")).reason == "unknown_action"
    assert life.money_held() == {("KBANK", "THB"): Decimal("100.00")}
    assert len(life) == 1


def test_an_action_issued_again_after_it_was_forgotten_runs_against_its_sla_from_the_new_version() -> None:
    life = ActionLifecycle()
    issue(life, "frz-1", priority=LOW)
    life.forget(["frz-1"])
    issue(life, "frz-1", version=2, priority=LOW, at_ms=T0 + 60 * MINUTE)

    assert life.due(T0 + 241 * MINUTE) == []  # version 1's deadline passed, but that version is gone
    assert life.due(T0 + 301 * MINUTE) == ["frz-1"]
    assert accepted(life, ack("frz-1", version=2)).first_execution

"""The circuit breaker (processors/circuit_breaker.py): capped per addressee, queued not dropped, by priority."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from processors.circuit_breaker import CircuitBreaker

MINUTE = 60_000
NOW = 1_750_000_000_000


@dataclass(frozen=True)
class Order:
    action_id: str
    addressee: str
    priority: int = 50
    version: int = 1
    issued_at_ms: int = NOW


def flood(addressee: str, n: int) -> list[Order]:
    return [Order(f"{addressee}-{i:03}", addressee, priority=i % 100) for i in range(n)]


def test_a_flood_to_one_bank_is_capped_and_another_bank_is_unaffected() -> None:
    breaker: CircuitBreaker[Order] = CircuitBreaker(limit=5, window_ms=MINUTE)

    admission = breaker.admit([*flood("kbank", 20), *flood("scb", 3)], NOW)

    assert sorted(a.addressee for a in admission.sent) == ["kbank"] * 5 + ["scb"] * 3
    assert len(admission.newly_held) == 15
    assert breaker.open_circuits() == {"kbank": 15}


def test_what_waits_goes_out_as_the_window_allows_highest_priority_first_and_nothing_is_lost() -> None:
    breaker: CircuitBreaker[Order] = CircuitBreaker(limit=5, window_ms=MINUTE)
    orders = flood("kbank", 12)
    first = breaker.admit(orders, NOW)

    assert breaker.drain(NOW + MINUTE - 1).sent == []
    second = breaker.drain(NOW + MINUTE)
    third = breaker.drain(NOW + 2 * MINUTE)

    assert [a.priority for a in first.sent] == [11, 10, 9, 8, 7]
    assert [a.priority for a in second.sent] == [6, 5, 4, 3, 2]
    assert [a.priority for a in third.sent] == [1, 0]
    assert sorted(second.unheld + third.unheld) == sorted(a.action_id for a in first.newly_held)
    assert breaker.open_circuits() == {}


def test_a_newer_version_of_a_waiting_action_replaces_it() -> None:
    breaker: CircuitBreaker[Order] = CircuitBreaker(limit=1, window_ms=MINUTE)
    breaker.admit([Order("a", "kbank", 90), Order("b", "kbank", 10)], NOW)

    later = breaker.admit([Order("b", "kbank", 20, version=2)], NOW + 1)
    (sent,) = breaker.drain(NOW + MINUTE).sent

    assert later.newly_held == [Order("b", "kbank", 20, version=2)]
    assert (sent.action_id, sent.version) == ("b", 2)


def test_an_action_restored_as_waiting_goes_out_and_is_tombstoned() -> None:
    breaker: CircuitBreaker[Order] = CircuitBreaker(limit=2, window_ms=MINUTE)
    breaker.hold(Order("a", "kbank"))

    admission = breaker.drain(NOW)

    assert [a.action_id for a in admission.sent] == ["a"]
    assert admission.unheld == ["a"]


def test_a_forgotten_action_stops_waiting() -> None:
    breaker: CircuitBreaker[Order] = CircuitBreaker(limit=1, window_ms=MINUTE)
    breaker.admit(flood("kbank", 3), NOW)

    assert breaker.forget(["kbank-000"]) == ["kbank-000"]
    assert breaker.open_circuits() == {"kbank": 1}


def test_a_limit_of_zero_sends_everything() -> None:
    breaker: CircuitBreaker[Order] = CircuitBreaker(limit=0, window_ms=MINUTE)

    assert len(breaker.admit(flood("kbank", 500), NOW).sent) == 500


ARRIVALS = st.tuples(st.sampled_from(["kbank", "scb"]), st.integers(0, 100), st.integers(0, 3 * MINUTE))


@given(st.lists(ARRIVALS, max_size=60), st.integers(1, 6))
def test_no_window_ever_carries_more_than_the_limit_and_every_action_goes_out_once(
    arrivals: list[tuple[str, int, int]], limit: int
) -> None:
    breaker: CircuitBreaker[Order] = CircuitBreaker(limit=limit, window_ms=MINUTE)
    sent: list[tuple[int, Order]] = []
    by_time = sorted(
        ((at, Order(f"a{i}", addressee, priority)) for i, (addressee, priority, at) in enumerate(arrivals)),
        key=lambda pair: pair[0],
    )
    for at, order in by_time:
        sent += [(at, a) for a in breaker.drain(NOW + at).sent]
        sent += [(at, a) for a in breaker.admit([order], NOW + at).sent]
    clock = 3 * MINUTE
    while breaker.open_circuits():
        clock += 1_000
        sent += [(clock, a) for a in breaker.drain(NOW + clock).sent]

    assert sorted(a.action_id for _, a in sent) == sorted(order.action_id for _, order in by_time)
    for at, action in sent:
        in_window = [a for t, a in sent if a.addressee == action.addressee and at - MINUTE < t <= at]
        assert len(in_window) <= limit

"""Versioned freeze orders (processors/freeze_orders.py): a new version only when the order would change.

The traces come from a real ``MoneyTrail``, so the orders are the ones the
pipeline would issue for the same events.
"""

from __future__ import annotations

from collections.abc import Mapping

from processors.freeze_orders import FreezeBook, FreezeOrder, freeze_action_id
from processors.money_trail import CaseTrace, Holding, MoneyTrail, Taint, TraceSettings
from processors.records import AccountKey, Report, Transfer

DAY_MS = 24 * 3600 * 1000
SETTINGS = TraceSettings(trace_window_ms=DAY_MS, max_hops=4, history_retention_ms=30 * DAY_MS)
NOW_MS = 1_000_000


def account(name: str) -> AccountKey:
    return ("bank", "KBANK", name)


def holding(name: str, currency: str = "THB") -> Holding:
    return (account(name), currency)


def transfer(txn_id: str, source: str, target: str, amount: int, at_ms: int) -> Transfer:
    return Transfer(txn_id, account(source), account(target), amount, "THB", at_ms)


def report(report_id: str, *transfers: Transfer) -> Report:
    reported_at_ms = max(t.at_ms for t in transfers) + 1
    return Report(report_id, reported_at_ms, reported_at_ms + 5, f"victim-{report_id}", "TH", "romance", transfers)


def new_book() -> FreezeBook:
    return FreezeBook(max_hops=SETTINGS.max_hops, hold_duration_ms=DAY_MS)


class Pipeline:
    """The trail and the book, fed the way ``pipeline/interception.py`` feeds them."""

    def __init__(self, book: FreezeBook | None = None) -> None:
        self.trail = MoneyTrail(SETTINGS)
        self.book = book if book is not None else new_book()  # an empty book is falsy (it has a length)
        self.last: tuple[Mapping[Holding, Taint | None], Mapping[Holding, CaseTrace]] = ({}, {})

    def feed(self, *events: Report | Transfer, now_ms: int = NOW_MS) -> dict[str, FreezeOrder]:
        """Orders issued for the events, by account name."""
        for event in events:
            if isinstance(event, Report):
                self.trail.add_report(event)
            else:
                self.trail.add_transaction(event)
        self.last = self.trail.retrace()
        return self.replay_last(now_ms)

    def replay_last(self, now_ms: int = NOW_MS) -> dict[str, FreezeOrder]:
        orders = self.book.update(*self.last, self.trail.reports, now_ms)
        return {order.target[2]: order for order in orders}


R1 = report("r1", transfer("v1", "victim1", "a", 100_000, at_ms=0))
A_TO_B = transfer("a-b", "a", "b", 60_000, at_ms=100)


def test_the_first_order_for_a_holding_is_version_1_and_holds_what_is_still_there() -> None:
    orders = Pipeline().feed(R1, A_TO_B)

    assert {name: (o.version, o.status, o.hold) for name, o in orders.items()} == {
        "a": (1, "active", 40_000),
        "b": (1, "active", 60_000),
    }
    assert orders["b"].report_ids == ("r1",)
    assert orders["b"].txn_ids == ("v1", "a-b")


def test_replaying_the_same_trace_issues_nothing_new() -> None:
    pipeline = Pipeline()
    pipeline.feed(R1, A_TO_B)

    assert pipeline.replay_last(now_ms=NOW_MS + DAY_MS) == {}
    # Redelivered input re-traced from scratch (as after a restart that replays the inputs) is no change either.
    replayed = Pipeline(pipeline.book)
    assert replayed.feed(R1, A_TO_B, now_ms=NOW_MS + 2 * DAY_MS) == {}


def test_a_changed_hold_is_a_new_version_and_unchanged_holdings_issue_nothing() -> None:
    pipeline = Pipeline()
    first = pipeline.feed(R1, A_TO_B)

    orders = pipeline.feed(transfer("a-c", "a", "c", 30_000, at_ms=200))

    assert {name: (o.version, o.hold) for name, o in orders.items()} == {"a": (2, 10_000), "c": (1, 30_000)}
    assert orders["a"].action_id == first["a"].action_id


def test_changed_evidence_with_the_same_hold_is_a_new_version() -> None:
    pipeline = Pipeline()
    pipeline.feed(R1, A_TO_B)

    # An earlier payment into a from another victim: first in, first out, so b now holds r2's money.
    orders = pipeline.feed(report("r2", transfer("v2", "victim2", "a", 100_000, at_ms=-50)))

    assert orders["b"].version == 2
    assert orders["b"].hold == 60_000
    assert orders["b"].report_ids == ("r2",)
    assert orders["b"].txn_ids == ("v2", "a-b")


def test_a_holding_that_disappears_is_released_only_if_it_had_an_active_order() -> None:
    book = new_book()
    Pipeline(book).feed(R1, A_TO_B)

    assert book.update({holding("never-ordered"): None}, {}, {}, NOW_MS) == []
    (released,) = book.update({holding("b"): None}, {}, {}, NOW_MS + 1)
    assert (released.target, released.version, released.status, released.hold) == (account("b"), 2, "released", 0)
    assert book.update({holding("b"): None}, {}, {}, NOW_MS + 2) == []


def test_a_late_earlier_outflow_releases_the_order_on_the_account_no_longer_reached() -> None:
    pipeline = Pipeline()
    pipeline.feed(R1, A_TO_B)

    orders = pipeline.feed(transfer("a-c", "a", "c", 100_000, at_ms=50))

    assert (orders["b"].version, orders["b"].status, orders["b"].hold) == (2, "released", 0)
    assert (orders["c"].version, orders["c"].status, orders["c"].hold) == (1, "active", 100_000)
    # Money that comes back to b later re-opens the same action with the next version.
    orders = pipeline.feed(transfer("c-b", "c", "b", 10_000, at_ms=150))
    assert (orders["b"].version, orders["b"].status, orders["b"].hold) == (3, "active", 10_000)


def test_the_action_id_is_derived_from_target_and_currency_alone() -> None:
    one = Pipeline().feed(R1, A_TO_B)
    other = Pipeline().feed(report("r9", transfer("v9", "someone-else", "a", 5, at_ms=7)))

    assert one["a"].action_id == other["a"].action_id == freeze_action_id(holding("a"))
    assert len({freeze_action_id(h) for h in (holding("a"), holding("b"), holding("a", "USD"))}) == 3


def test_after_restore_a_changed_order_continues_the_version_and_an_unchanged_one_emits_nothing() -> None:
    before_restart = Pipeline().feed(R1, A_TO_B)
    book = new_book()
    for order in before_restart.values():
        # As recovered from the actions topic, where the order had reached version 7.
        book.restore(order.action_id, 7, order.fingerprint)
    book.restore(before_restart["a"].action_id, 3, before_restart["a"].fingerprint)  # older copy: ignored

    restarted = Pipeline(book)
    assert restarted.feed(R1, A_TO_B) == {}
    orders = restarted.feed(transfer("a-c", "a", "c", 30_000, at_ms=200))

    assert (orders["a"].version, orders["a"].hold) == (8, 10_000)
    assert orders["c"].version == 1


def test_orders_come_highest_priority_first() -> None:
    pipeline = Pipeline()
    # a keeps 40%, b passes nearly all of its money on, c holds all it got.
    pipeline.feed(R1, A_TO_B, transfer("b-c", "b", "c", 59_000, at_ms=200))
    issued = new_book().update(*pipeline.last, pipeline.trail.reports, NOW_MS)

    priorities = [order.priority for order in issued]
    assert len(set(priorities)) == 3
    assert priorities == sorted(priorities, reverse=True)
    assert [order.target[2] for order in issued] == ["c", "a", "b"]


def test_the_hold_never_exceeds_what_was_received() -> None:
    orders = Pipeline().feed(
        R1,
        transfer("more-than-tainted", "a", "b", 250_000, at_ms=100),  # carries only the 100_000 tainted
        transfer("b-c", "b", "c", 400_000, at_ms=200),
    )

    assert {name: (o.received, o.hold) for name, o in orders.items()} == {
        "a": (100_000, 0),
        "b": (100_000, 0),
        "c": (100_000, 100_000),
    }
    assert all(0 <= o.hold <= o.received for o in orders.values())

"""Versioned freeze orders (processors/freeze_orders.py): a new version only when the order would change.

The traces come from a real ``MoneyTrail``, so the orders are the ones the
pipeline would issue for the same events; payment-proxy links are made by hand.
Versions come from an ``ActionBook``, as in the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from processors.action_book import ActionBook, ranked
from processors.freeze_orders import LINKED_PRIORITY, FreezeBook, FreezeOrder, freeze_action_id
from processors.money_trail import Holding, HoldingTrace, MoneyTrail, TraceSettings
from processors.records import AccountKey, Report, Transfer
from processors.telecom import AccountLink

DAY_MS = 24 * 3600 * 1000
SETTINGS = TraceSettings(trace_window_ms=DAY_MS, max_hops=4, history_retention_ms=30 * DAY_MS)
NOW_MS = 1_000_000

Links = Mapping[AccountKey, AccountLink | None]


def account(name: str) -> AccountKey:
    return ("bank", "KBANK", name)


def holding(name: str, currency: str = "THB") -> Holding:
    return (account(name), currency)


def transfer(txn_id: str, source: str, target: str, amount: int, at_ms: int) -> Transfer:
    return Transfer(txn_id, account(source), account(target), amount, "THB", at_ms)


def report(report_id: str, *transfers: Transfer) -> Report:
    reported_at_ms = max(t.at_ms for t in transfers) + 1
    return Report(report_id, reported_at_ms, reported_at_ms + 5, f"victim-{report_id}", "TH", "romance", transfers)


class Book:
    """The freeze decisions and the action book, settled the way ``pipeline/interception.py`` settles them."""

    def __init__(self) -> None:
        self.freezes = FreezeBook(max_hops=SETTINGS.max_hops, hold_duration_ms=DAY_MS)
        self.actions = ActionBook()

    def update(
        self,
        traces: Mapping[Holding, HoldingTrace | None],
        links: Links,
        reports: Mapping[str, Report],
        now_ms: int,
    ) -> list[FreezeOrder]:
        """New order versions, highest priority first."""
        return ranked(self.actions.settle(self.freezes.update(traces, links, reports, now_ms), now_ms))

    def adopt(
        self, traces: Mapping[Holding, HoldingTrace | None], links: Links, reports: Mapping[str, Report], now_ms: int
    ) -> int:
        """Start-up recovery: how many restored versions the rebuilt orders matched; nothing is issued."""
        return self.actions.adopt(self.freezes.update(traces, links, reports, now_ms))

    def restore(self, order: FreezeOrder) -> None:
        self.actions.restore(order)

    def order(self, action_id: str) -> FreezeOrder | None:
        order = self.actions.last(action_id)
        assert order is None or isinstance(order, FreezeOrder)
        return order


def new_book() -> Book:
    return Book()


class Pipeline:
    """The trail and the book, fed the way ``pipeline/interception.py`` feeds them."""

    def __init__(self, book: Book | None = None) -> None:
        self.trail = MoneyTrail(SETTINGS)
        self.book = book if book is not None else new_book()
        self.traces: Mapping[Holding, HoldingTrace | None] = {}
        self.links: Links = {}

    def take(self, *events: Report | Transfer) -> None:
        for event in events:
            if isinstance(event, Report):
                self.trail.add_report(event)
            else:
                self.trail.add_transaction(event)
        self.traces = self.trail.retrace()

    def feed(
        self, *events: Report | Transfer, links: Links | None = None, now_ms: int = NOW_MS
    ) -> dict[str, FreezeOrder]:
        """Orders issued for the events and changed links, by account name."""
        self.take(*events)
        self.links = links or {}
        return self.replay_last(now_ms)

    def replay_last(self, now_ms: int = NOW_MS) -> dict[str, FreezeOrder]:
        orders = self.book.update(self.traces, self.links, self.trail.reports, now_ms)
        return {order.target[2]: order for order in orders}

    def rebuild(self, *events: Report | Transfer, links: Links, now_ms: int = NOW_MS) -> int:
        """Start-up recovery: replay the inputs and adopt the restored versions, issuing nothing."""
        self.take(*events)
        return self.book.adopt(self.traces, links, self.trail.reports, now_ms)


R1 = report("r1", transfer("v1", "victim1", "a", 100_000, at_ms=0))
A_TO_B = transfer("a-b", "a", "b", 60_000, at_ms=100)
PROXY = "0812345678"  # an account whose number is the scammer's phone number
A_TO_PROXY = transfer("a-proxy", "a", PROXY, 60_000, at_ms=100)
LINK = AccountLink(
    account=account(PROXY),
    msisdn="+66812345678",
    report_ids=("r1",),
    reason=f"account number {PROXY} is reported scammer number +66812345678 used as a payment proxy",
)


def summary(order: FreezeOrder) -> tuple[int, str, int]:
    return (order.version, order.status, order.hold)


def test_the_first_order_for_a_holding_is_version_1_and_holds_what_is_still_there() -> None:
    orders = Pipeline().feed(R1, A_TO_B)

    assert {name: summary(o) for name, o in orders.items()} == {
        "a": (1, "active", 40_000),
        "b": (1, "active", 60_000),
    }
    assert orders["b"].report_ids == ("r1",)
    assert orders["b"].txn_ids == ("v1", "a-b")
    assert [(s.txn_id, s.hop, s.tainted_amount) for s in orders["b"].trail] == [("v1", 0, 60_000), ("a-b", 1, 60_000)]


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
    first = pipeline.feed(R1, A_TO_B)

    # An earlier payment into a from another victim: first in, first out, so b now holds r2's money.
    orders = pipeline.feed(report("r2", transfer("v2", "victim2", "a", 100_000, at_ms=-50)))

    b = orders["b"]
    assert summary(b) == (2, "active", 60_000)
    assert b.report_ids == ("r2",)
    assert b.txn_ids == ("v2", "a-b")
    assert [(s.txn_id, s.report_ids, s.tainted_amount) for s in b.trail] == [
        ("v2", ("r2",), 60_000),
        ("a-b", ("r2",), 60_000),
    ]
    assert b.evidence_digest != first["b"].evidence_digest


def test_a_changed_trail_alone_is_a_new_version() -> None:
    pipeline = Pipeline()
    pipeline.feed(R1, A_TO_B)

    # The victim corrects the reference of the payment: same money, same reports, other evidence.
    corrected = replace(R1, transfers=(transfer("v1-bank-ref", "victim1", "a", 100_000, at_ms=0),), revision=2)
    orders = pipeline.feed(corrected)

    assert {name: summary(o) for name, o in orders.items()} == {"a": (2, "active", 40_000), "b": (2, "active", 60_000)}
    assert orders["b"].report_ids == ("r1",)
    assert orders["b"].txn_ids == ("v1-bank-ref", "a-b")


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

    assert summary(orders["b"]) == (2, "released", 0)
    assert summary(orders["c"]) == (1, "active", 100_000)
    # Money that comes back to b later re-opens the same action with the next version.
    orders = pipeline.feed(transfer("c-b", "c", "b", 10_000, at_ms=150))
    assert summary(orders["b"]) == (3, "active", 10_000)


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
        book.restore(replace(order, version=7))
    book.restore(replace(before_restart["a"], version=3))  # older copy: ignored

    restarted = Pipeline(book)
    assert restarted.feed(R1, A_TO_B) == {}
    orders = restarted.feed(transfer("a-c", "a", "c", 30_000, at_ms=200))

    assert (orders["a"].version, orders["a"].hold) == (8, 10_000)
    assert orders["c"].version == 1


def test_orders_come_highest_priority_first() -> None:
    pipeline = Pipeline()
    # a keeps 40%, b passes nearly all of its money on, c holds all it got.
    pipeline.take(R1, A_TO_B, transfer("b-c", "b", "c", 59_000, at_ms=200))
    issued = new_book().update(pipeline.traces, {}, pipeline.trail.reports, NOW_MS)

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


def test_a_payment_proxy_with_no_traced_money_is_flagged_with_nothing_to_hold() -> None:
    orders = Pipeline().feed(R1, links={account(PROXY): LINK})

    proxy = orders[PROXY]
    assert summary(proxy) == (1, "active", 0)
    assert (proxy.priority, proxy.report_ids, proxy.txn_ids, proxy.trail) == (LINKED_PRIORITY, ("r1",), (), ())
    assert proxy.reasons[0] == LINK.reason
    assert proxy.action_id == freeze_action_id(holding(PROXY))


def test_a_proxy_link_before_or_after_the_trail_ends_in_the_same_order() -> None:
    link_first = Pipeline()
    assert summary(link_first.feed(R1, links={account(PROXY): LINK})[PROXY]) == (1, "active", 0)
    assert summary(link_first.feed(A_TO_PROXY)[PROXY]) == (2, "active", 60_000)

    trail_first = Pipeline()
    assert summary(trail_first.feed(R1, A_TO_PROXY)[PROXY]) == (1, "active", 60_000)
    assert PROXY not in trail_first.feed(links={account(PROXY): LINK})  # the traced money decides the order

    action_id = freeze_action_id(holding(PROXY))
    one, other = link_first.book.order(action_id), trail_first.book.order(action_id)
    assert one is not None and other is not None
    assert replace(one, version=0) == replace(other, version=0)
    assert one.txn_ids == ("v1", "a-proxy")


def test_when_the_trail_goes_but_the_link_stays_the_order_falls_back_to_the_link() -> None:
    pipeline = Pipeline()
    pipeline.feed(R1, A_TO_PROXY, links={account(PROXY): LINK})

    # A late earlier outflow takes all the money elsewhere: no trail reaches the proxy any more.
    orders = pipeline.feed(transfer("a-c", "a", "c", 100_000, at_ms=50))

    proxy = orders[PROXY]
    assert summary(proxy) == (2, "active", 0)
    assert (proxy.priority, proxy.report_ids, proxy.txn_ids) == (LINKED_PRIORITY, ("r1",), ())
    assert proxy.reasons[0] == LINK.reason


def test_a_link_that_goes_with_no_trail_releases_the_order() -> None:
    pipeline = Pipeline()
    pipeline.feed(R1, links={account(PROXY): LINK})

    orders = pipeline.feed(links={account(PROXY): None})

    assert summary(orders[PROXY]) == (2, "released", 0)
    assert pipeline.feed(links={account(PROXY): None}) == {}


def test_after_restore_and_adopt_nothing_is_issued_and_a_later_link_removal_releases_the_proxy_order() -> None:
    events = (R1, A_TO_B)
    links = {account(PROXY): LINK}
    before_restart = Pipeline().feed(*events, links=links)
    assert {name: summary(o) for name, o in before_restart.items()} == {
        "a": (1, "active", 40_000),
        "b": (1, "active", 60_000),
        PROXY: (1, "active", 0),
    }

    book = new_book()
    for order in before_restart.values():
        book.restore(replace(order, version=7, issued_at_ms=0))  # as recovered from the actions topic
    restarted = Pipeline(book)
    assert restarted.rebuild(*events, links=links) == 3
    # The rebuilt orders are adopted at the restored version.
    assert all(book.order(o.action_id) == replace(o, version=7) for o in before_restart.values())

    # The same traces and links again (a redelivered batch): nothing new.
    assert book.update(restarted.traces, links, restarted.trail.reports, NOW_MS + 1) == []
    # The book remembers the link it adopted, so its removal releases the proxy-only order.
    orders = restarted.feed(links={account(PROXY): None}, now_ms=NOW_MS + 2)
    assert {name: summary(o) for name, o in orders.items()} == {PROXY: (8, "released", 0)}


# -- expiry ---------------------------------------------------------------------------------------

R2 = report("r2", transfer("v2", "victim2", "c", 50_000, at_ms=0))


def test_forget_drops_the_traces_and_links_only_expired_reports_stand_behind() -> None:
    pipeline = Pipeline()
    assert set(pipeline.feed(R1, A_TO_B, R2, links={account(PROXY): LINK})) == {"a", "b", "c", PROXY}

    assert pipeline.book.freezes.forget({"r1", "r2"}.__contains__) == 0
    assert pipeline.book.freezes.forget({"r2"}.__contains__) == 3  # a, b and the proxy link: r1 expired
    assert pipeline.book.freezes.forget({"r2"}.__contains__) == 0


def expire(pipeline: Pipeline, in_force: Mapping[str, Report]) -> list[str]:
    """Forget as the pipeline does when every report but those ``in_force`` expired; the actions forgotten."""
    pipeline.book.freezes.forget(in_force.__contains__)
    return pipeline.book.actions.forget(lambda r: r not in in_force, unseen_before_ms=NOW_MS, released_before_ms=NOW_MS)


def test_money_of_expired_reports_moving_on_is_neither_held_nor_released() -> None:
    pipeline = Pipeline()
    pipeline.feed(R1, A_TO_B)
    in_force = {"r2": R2}  # r1 expired
    assert expire(pipeline, in_force) != []

    # The trail still follows r1's money (its own expiry is separate) when b passes it on.
    pipeline.take(transfer("b-d", "b", "d", 30_000, at_ms=200))
    assert set(pipeline.traces) >= {holding("b"), holding("d")}
    assert pipeline.book.update(pipeline.traces, {}, in_force, NOW_MS + 1) == []


def test_a_trace_that_keeps_a_report_in_force_still_decides_its_order() -> None:
    shared = report("r2", transfer("v2", "victim2", "a", 10_000, at_ms=50))
    pipeline = Pipeline()
    pipeline.feed(R1, shared)
    in_force = {"r2": shared}  # r1 expired, r2 still holds account a
    assert pipeline.book.freezes.forget(in_force.__contains__) == 0
    assert expire(pipeline, in_force) == []

    pipeline.take(A_TO_B)
    issued = {o.target[2]: o for o in pipeline.book.update(pipeline.traces, {}, in_force, NOW_MS + 1)}
    assert summary(issued["a"])[:2] == (2, "active")  # a's hold shrinks: a new version of the order in force
    assert issued["a"].hold_expires_at_ms == shared.received_at_ms + DAY_MS  # only the report in force renews it

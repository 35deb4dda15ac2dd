"""The money-trail rules (processors/trace_reference.py) on small hand-made cases, run on the incremental engine.

Each case is small enough to work out on paper; the expected numbers in each
test follow from the rules in the reference oracle's docstring, not from running
the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import msgspec

from processors.money_trail import Holding, HoldingTrace, MoneyTrail, TraceSettings, hub_reason
from processors.records import AccountKey, Report, Transfer

WINDOW_MS = 1_000
SETTINGS = TraceSettings(trace_window_ms=WINDOW_MS, max_hops=4, history_retention_ms=10_000)
MINUTE_MS = 60_000
TEN_AM_MS = 1_763_892_000_000  # 2025-11-23T10:00:00Z


def account(name: str) -> AccountKey:
    return ("bank", "KBANK", name)


def transfer(txn_id: str, source: str, target: str, amount: int, at_ms: int, currency: str = "THB") -> Transfer:
    return Transfer(txn_id, account(source), account(target), amount, currency, at_ms)


def report(report_id: str, *transfers: Transfer, received_at_ms: int = 50_000) -> Report:
    reported_at_ms = max(t.at_ms for t in transfers) + 1
    return Report(report_id, reported_at_ms, received_at_ms, f"victim-{report_id}", "TH", "investment", transfers)


def trail_of(*events: Report | Transfer, settings: TraceSettings = SETTINGS) -> MoneyTrail:
    trail = MoneyTrail(settings)
    feed(trail, *events)
    return trail


def feed(trail: MoneyTrail, *events: Report | Transfer) -> None:
    for event in events:
        if isinstance(event, Report):
            trail.add_report(event)
        else:
            trail.add_transaction(event)


Traces = Mapping[Holding, HoldingTrace | None]


def reached(traces: Traces, currency: str = "THB") -> dict[str, tuple[int, int, int]]:
    """Account name -> (received, moved_on, hop) for every holding the traces reach in ``currency``."""
    return {
        target[2]: (trace.received, trace.moved_on, trace.hop)
        for (target, in_currency), trace in traces.items()
        if trace is not None and in_currency == currency
    }


def trace_at(traces: Traces, name: str, currency: str = "THB") -> HoldingTrace:
    trace = traces[(account(name), currency)]
    assert trace is not None, f"{name} is not reached"
    return trace


def steps(trace: HoldingTrace) -> list[tuple[str, tuple[str, ...], int, int]]:
    """The trail as (txn_id, report_ids, hop, tainted_amount), in (at, txn_id) order."""
    return [(s.txn_id, s.report_ids, s.hop, s.tainted_amount) for s in trace.trail]


def follow(view: dict[Holding, HoldingTrace], changed: Traces) -> None:
    """Apply one retrace to what a consumer of its output would know."""
    for holding, trace in changed.items():
        if trace is None:
            view.pop(holding, None)
        else:
            view[holding] = trace


def test_a_reported_transfer_puts_the_money_at_its_target_as_hop_0() -> None:
    trail = trail_of(report("r1", transfer("t0", "victim", "a", 500, at_ms=100)))

    changed = trail.retrace()

    assert reached(changed) == {"a": (500, 0, 0)}
    a = trace_at(changed, "a")
    assert a.remaining == 500
    assert a.report_ids == ("r1",)
    assert a.first_arrival_ms == a.last_arrival_ms == 100
    (step,) = a.trail
    assert (step.txn_id, step.report_ids, step.hop, step.tainted_amount, step.at_ms) == ("t0", ("r1",), 0, 500, 100)
    assert (step.source, step.target, step.currency) == (account("victim"), account("a"), "THB")
    assert trail.holdings() == changed
    assert trail.holding((account("a"), "THB")) == a


def test_money_is_followed_through_a_chain_of_mules_with_what_each_kept() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0)),
        transfer("t1", "a", "b", 1_000, at_ms=10),
        transfer("t2", "b", "c", 900, at_ms=20),  # b keeps 100
        transfer("t3", "c", "d", 900, at_ms=30),
        transfer("t4", "d", "e", 400, at_ms=40),  # d keeps 500
    )

    changed = trail.retrace()

    assert reached(changed) == {
        "a": (1_000, 1_000, 0),
        "b": (1_000, 900, 1),
        "c": (900, 900, 2),
        "d": (900, 400, 3),
        "e": (400, 0, 4),
    }
    # Each step says how much of the money that reached e it carried: all 400 of it, all the way.
    assert steps(trace_at(changed, "e")) == [
        ("t0", ("r1",), 0, 400),
        ("t1", ("r1",), 1, 400),
        ("t2", ("r1",), 2, 400),
        ("t3", ("r1",), 3, 400),
        ("t4", ("r1",), 4, 400),
    ]
    assert [s.tainted_amount for s in trace_at(changed, "d").trail] == [900, 900, 900, 900]


def test_an_outflow_draws_on_the_oldest_tainted_lot_first() -> None:
    trail = trail_of(
        report("r1", transfer("t1", "victim1", "a", 100, at_ms=10)),
        report("r2", transfer("t2", "victim2", "a", 50, at_ms=20)),
        transfer("out1", "a", "b", 120, at_ms=30),  # all 100 of r1's lot, then 20 of r2's
        transfer("out2", "a", "c", 30, at_ms=40),  # the 30 left of r2's lot
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (150, 150, 0), "b": (120, 0, 1), "c": (30, 0, 1)}
    assert trace_at(changed, "b").report_ids == ("r1", "r2")
    assert trace_at(changed, "c").report_ids == ("r2",)
    # One step per transfer: out1 carried both reports' money, 100 + 20.
    assert steps(trace_at(changed, "b")) == [
        ("t1", ("r1",), 0, 100),
        ("t2", ("r2",), 0, 20),
        ("out1", ("r1", "r2"), 1, 120),
    ]
    assert steps(trace_at(changed, "c")) == [("t2", ("r2",), 0, 30), ("out2", ("r2",), 1, 30)]


def test_an_account_never_passes_on_more_tainted_money_than_it_received() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 100, at_ms=0)),
        transfer("big", "a", "b", 250, at_ms=10),  # 150 of it is someone else's money
        transfer("after", "a", "c", 80, at_ms=20),  # nothing tainted left to carry
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (100, 100, 0), "b": (100, 0, 1)}


def test_money_that_left_before_the_tainted_money_arrived_is_not_followed() -> None:
    trail = trail_of(
        transfer("earlier", "a", "b", 100, at_ms=9),
        report("r1", transfer("t0", "victim", "a", 100, at_ms=10)),
        transfer("later", "a", "c", 40, at_ms=11),
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (100, 40, 0), "c": (40, 0, 1)}


def test_transfers_in_the_same_millisecond_are_taken_in_txn_id_order() -> None:
    trail = trail_of(
        report("r1", transfer("t5", "victim", "a", 100, at_ms=10)),
        transfer("t4", "a", "b", 100, at_ms=10),  # before t5 in (at, txn_id) order: nothing to carry yet
        transfer("t6", "a", "c", 100, at_ms=10),  # after t5: carries it
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (100, 100, 0), "c": (100, 0, 1)}


def test_outflows_later_than_the_trace_window_after_the_arrival_are_not_followed() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 200, at_ms=0)),
        transfer("at-window", "a", "b", 100, at_ms=WINDOW_MS),
        transfer("past-window", "a", "c", 100, at_ms=WINDOW_MS + 1),
    )

    changed = trail.retrace()

    # The 100 still there is treated as held by a.
    assert reached(changed) == {"a": (200, 100, 0), "b": (100, 0, 1)}


def test_the_trace_window_runs_from_each_lots_own_arrival() -> None:
    trail = trail_of(
        report("r1", transfer("t1", "victim1", "a", 100, at_ms=0)),
        report("r2", transfer("t2", "victim2", "a", 100, at_ms=900)),
        # r1's lot is past the window, r2's is not: only r2's 100 goes on.
        transfer("out", "a", "b", 150, at_ms=1_500),
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (200, 100, 0), "b": (100, 0, 1)}
    assert trace_at(changed, "b").report_ids == ("r2",)


def test_max_hops_bounds_the_trail() -> None:
    settings = TraceSettings(trace_window_ms=WINDOW_MS, max_hops=2, history_retention_ms=10_000)
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 100, at_ms=0)),
        transfer("t1", "a", "b", 100, at_ms=10),
        transfer("t2", "b", "c", 100, at_ms=20),
        transfer("t3", "c", "d", 100, at_ms=30),
        settings=settings,
    )

    changed = trail.retrace()

    # The money left c, so c holds none of it (moved on), but d is one hop too far to follow.
    assert reached(changed) == {"a": (100, 100, 0), "b": (100, 100, 1), "c": (100, 100, 2)}
    assert trace_at(changed, "c").remaining == 0


def test_hop_is_the_accounts_shortest_distance_from_the_victims() -> None:
    settings = TraceSettings(trace_window_ms=WINDOW_MS, max_hops=2, history_retention_ms=10_000)
    trail = trail_of(
        report("r1", transfer("t0", "victim1", "a", 100, at_ms=0)),
        transfer("a-b", "a", "b", 100, at_ms=10),
        transfer("b-c", "b", "c", 100, at_ms=20),  # c is 2 hops out: at max_hops
        transfer("c-d", "c", "d", 50, at_ms=30),  # moved on, not followed
        settings=settings,
    )
    before = trail.retrace()
    assert reached(before) == {"a": (100, 100, 0), "b": (100, 100, 1), "c": (100, 50, 2)}

    # Another victim pays c directly before c-d: c is now at hop 0, so c-d travels at hop 1. It still
    # draws the oldest lot, r1's.
    trail.add_report(report("r2", transfer("v2", "victim2", "c", 100, at_ms=25)))
    after = trail.retrace()

    assert reached(after) == {"c": (200, 50, 0), "d": (50, 0, 1)}
    assert trace_at(after, "c").report_ids == ("r1", "r2")
    assert steps(trace_at(after, "d")) == [
        ("t0", ("r1",), 0, 50),
        ("a-b", ("r1",), 1, 50),
        ("b-c", ("r1",), 2, 50),
        ("c-d", ("r1",), 1, 50),
    ]


def test_transfers_in_another_currency_do_not_carry_the_taint() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 100, at_ms=0)),
        transfer("usd", "a", "b", 100, at_ms=10, currency="USD"),
        transfer("thb", "a", "c", 60, at_ms=20),
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (100, 60, 0), "c": (60, 0, 1)}
    assert reached(changed, currency="USD") == {}


def test_self_transfers_are_not_hops() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 10_000, at_ms=0)),
        *(transfer(f"self-{n}", "a", "a", 10_000, at_ms=10 * n) for n in range(1, 6)),
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (10_000, 0, 0)}
    assert steps(trace_at(changed, "a")) == [("t0", ("r1",), 0, 10_000)]


def test_money_bounced_between_two_mules_ends_where_it_stopped() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 10_000, at_ms=0)),
        transfer("ab1", "a", "b", 10_000, at_ms=10),
        transfer("ba1", "b", "a", 10_000, at_ms=20),
        transfer("ab2", "a", "b", 10_000, at_ms=30),
        transfer("ba2", "b", "a", 10_000, at_ms=40),
        transfer("ab3", "a", "b", 10_000, at_ms=50),
    )

    changed = trail.retrace()

    # The same 10,000 arrives three times at each account; only b still has it. Hops stay the distances:
    # a is 0, b is 1, so each a -> b step is hop 1 and each b -> a step hop 2.
    assert reached(changed) == {"a": (30_000, 30_000, 0), "b": (30_000, 20_000, 1)}
    assert trace_at(changed, "b").remaining == 10_000
    assert trace_at(changed, "a").remaining == 0
    # The same money reached b three times through t0 and ab1, twice through ba1 and ab2; a step
    # never shows more than its transfer moved.
    assert steps(trace_at(changed, "b")) == [
        ("t0", ("r1",), 0, 10_000),
        ("ab1", ("r1",), 1, 10_000),
        ("ba1", ("r1",), 2, 10_000),
        ("ab2", ("r1",), 1, 10_000),
        ("ba2", ("r1",), 2, 10_000),
        ("ab3", ("r1",), 1, 10_000),
    ]


def test_a_victim_who_is_also_a_mule_passes_on_the_first_victims_money_once() -> None:
    events = [
        report("r1", transfer("w-v", "w", "v", 500, at_ms=0)),  # w pays v
        report("r2", transfer("v-m", "v", "m", 300, at_ms=10)),  # v pays m, and reports it too
        transfer("w-v", "w", "v", 500, at_ms=0),
        transfer("v-m", "v", "m", 300, at_ms=10),
    ]

    for ordered in (events, events[::-1]):
        traced = trail_of(*ordered).retrace()

        # v-m draws 300 of r1's money at v; none of it is new taint, so m received 300, not 600.
        assert reached(traced) == {"v": (500, 300, 0), "m": (300, 0, 0)}
        assert trace_at(traced, "v").report_ids == ("r1",)
        m = trace_at(traced, "m")
        assert m.report_ids == ("r1", "r2")
        assert steps(m) == [("w-v", ("r1", "r2"), 0, 300), ("v-m", ("r1", "r2"), 0, 300)]
        assert sum(trace.remaining for trace in traced.values() if trace is not None) == 500


def test_the_same_transfer_in_two_reports_is_counted_once() -> None:
    paid = transfer("t0", "victim", "a", 1_000, at_ms=0)
    trail = trail_of(report("r1", paid), transfer("a-b", "a", "b", 1_000, at_ms=10))
    first = trail.retrace()
    assert reached(first) == {"a": (1_000, 1_000, 0), "b": (1_000, 0, 1)}

    trail.add_report(report("r2", paid))
    second = trail.retrace()

    assert reached(second) == {"a": (1_000, 1_000, 0), "b": (1_000, 0, 1)}
    assert steps(trace_at(second, "b")) == [("t0", ("r1", "r2"), 0, 1_000), ("a-b", ("r1", "r2"), 1, 1_000)]


def test_a_transfer_the_feed_lacks_takes_the_copy_in_the_lowest_report_id() -> None:
    trail = trail_of(
        report("r2", transfer("t0", "victim", "a", 1_200, at_ms=0)),  # the joint account holder remembers 1,200
        report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0)),
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (1_000, 0, 0)}
    assert trace_at(changed, "a").report_ids == ("r1", "r2")


def test_the_feeds_executed_at_wins_over_the_victims_sent_at() -> None:
    settings = TraceSettings()
    # The victim remembers 10:02; the bank executed it at 10:00, and a forwarded it at 10:01.
    remembered = report("r1", transfer("t0", "victim", "a", 1_000, at_ms=TEN_AM_MS + 2 * MINUTE_MS))
    executed = transfer("t0", "victim", "a", 1_000, at_ms=TEN_AM_MS)
    forwarded = transfer("a-b", "a", "b", 1_000, at_ms=TEN_AM_MS + MINUTE_MS)

    report_first: dict[Holding, HoldingTrace] = {}
    trail = trail_of(remembered, forwarded, settings=settings)
    follow(report_first, trail.retrace())
    assert reached(report_first) == {"a": (1_000, 0, 0)}  # on the victim's word, a-b left before the money came
    trail.add_transaction(executed)
    follow(report_first, trail.retrace())

    feed_first = trail_of(executed, forwarded, remembered, settings=settings).retrace()

    for traced in (report_first, feed_first):
        assert reached(traced) == {"a": (1_000, 1_000, 0), "b": (1_000, 0, 1)}
        assert [s.at_ms for s in trace_at(traced, "b").trail] == [TEN_AM_MS, TEN_AM_MS + MINUTE_MS]
        assert trace_at(traced, "a").first_arrival_ms == TEN_AM_MS


def test_a_hub_by_counterparties_holds_what_it_received_and_its_customers_get_nothing() -> None:
    events = [
        report("r1", transfer("t0", "victim", "h", 1_000, at_ms=0)),
        transfer("c3-h", "c3", "h", 50, at_ms=5),  # an ordinary customer paying in
        transfer("h-c1", "h", "c1", 600, at_ms=10),
        transfer("h-c2", "h", "c2", 400, at_ms=20),
    ]

    # c1, c2 and c3: three counterparties within the window of the tainted arrival. The victim's
    # reported payment does not count: victims paying a collection account do not make it a hub.
    hub = trail_of(*events, settings=replace(SETTINGS, hub_counterparties=3)).retrace()

    assert reached(hub) == {"h": (1_000, 0, 0)}
    h = trace_at(hub, "h")
    assert h.remaining == 1_000
    assert h.hub_reason == hub_reason(False, 3)

    # One counterparty short of a hub: an ordinary mule.
    mule = trail_of(*events, settings=replace(SETTINGS, hub_counterparties=4)).retrace()

    assert reached(mule) == {"h": (1_000, 1_000, 0), "c1": (600, 0, 1), "c2": (400, 0, 1)}
    assert trace_at(mule, "h").hub_reason is None


def test_a_traced_account_becomes_a_hub_as_its_counterparties_arrive_one_batch_at_a_time() -> None:
    """Transfers later than everything traced are allocated on from where the account stopped; one
    that brings the counterparties up to ``hub_counterparties`` makes it a hub all the same."""
    settings = replace(SETTINGS, hub_counterparties=3)
    trail = trail_of(report("r1", transfer("t0", "victim", "h", 1_000, at_ms=0)), settings=settings)
    view: dict[Holding, HoldingTrace] = {}
    follow(view, trail.retrace())
    later = [
        transfer("h-c1", "h", "c1", 600, at_ms=10),
        transfer("c2-h", "c2", "h", 50, at_ms=15),  # a customer paying in: a counterparty, no taint
        transfer("h-c3", "h", "c3", 400, at_ms=20),
    ]
    for event in later[:2]:
        feed(trail, event)
        follow(view, trail.retrace())

    assert reached(view) == {"h": (1_000, 600, 0), "c1": (600, 0, 1)}  # two counterparties: a mule so far

    feed(trail, later[2])
    follow(view, trail.retrace())

    assert reached(view) == {"h": (1_000, 0, 0)}
    assert trace_at(view, "h").hub_reason == hub_reason(False, 3)


def test_many_victims_paying_one_account_do_not_make_it_a_hub() -> None:
    victims = [report(f"r{n}", transfer(f"t{n}", f"victim{n}", "collector", 100, at_ms=n)) for n in range(5)]
    trail = trail_of(*victims, transfer("out", "collector", "next", 500, at_ms=10),
                     settings=replace(SETTINGS, hub_counterparties=3))  # fmt: skip

    changed = trail.retrace()

    assert trace_at(changed, "collector").hub_reason is None
    assert reached(changed)["next"] == (500, 0, 1)


def test_a_listed_hub_holds_what_it_received() -> None:
    settings = replace(SETTINGS, hub_accounts=frozenset({"bank:KBANK:h"}))
    trail = trail_of(
        report("r1", transfer("t0", "victim", "h", 1_000, at_ms=0)),
        transfer("h-c", "h", "c", 600, at_ms=10),
        settings=settings,
    )

    changed = trail.retrace()

    assert reached(changed) == {"h": (1_000, 0, 0)}
    assert trace_at(changed, "h").hub_reason == hub_reason(True, 0)


def test_a_whole_institution_can_be_listed_as_a_hub() -> None:
    wallet = ("wallet", "TRUEMONEY", "w1")
    settings = replace(SETTINGS, hub_accounts=frozenset({"wallet:TRUEMONEY:*"}))
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0)),
        Transfer("a-w", account("a"), wallet, 1_000, "THB", 10),
        Transfer("w-c", wallet, account("c"), 1_000, "THB", 20),
        settings=settings,
    )

    changed = trail.retrace()

    assert reached(changed) == {"a": (1_000, 1_000, 0), "w1": (1_000, 0, 1)}
    w1 = changed[(wallet, "THB")]
    assert w1 is not None
    assert w1.hub_reason == hub_reason(True, 0)
    assert settings.listed_hub(("wallet", "TRUEMONEY", "someone-else"))
    assert not settings.listed_hub(("wallet", "OTHERPAY", "w1"))


def test_a_redelivered_transaction_is_ignored() -> None:
    trail = trail_of(report("r1", transfer("t0", "victim", "a", 100, at_ms=0)))
    move = transfer("t1", "a", "b", 60, at_ms=10)
    assert trail.add_transaction(move)
    first = trail.retrace()

    assert not trail.add_transaction(move)
    assert not trail.add_transaction(msgspec.structs.replace(move, amount=99))  # first delivery wins
    again = trail.retrace()

    assert reached(first) == {"a": (100, 60, 0), "b": (60, 0, 1)}
    assert again == {}
    assert len(trail) == 1


def test_a_redelivered_report_is_ignored_even_if_received_again_later() -> None:
    original = report("r1", transfer("t0", "victim", "a", 100, at_ms=0), received_at_ms=5_000)
    redelivered = report("r1", transfer("t0", "victim", "a", 100, at_ms=0), received_at_ms=9_000)
    trail = trail_of(original)
    trail.retrace()

    assert not trail.add_report(original)
    assert not trail.add_report(redelivered)
    assert trail.retrace() == {}


def test_a_corrected_report_withdraws_the_transfers_it_no_longer_names() -> None:
    first = report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0), transfer("t1", "victim", "b", 500, at_ms=5))
    trail = trail_of(first, transfer("a-c", "a", "c", 1_000, at_ms=10))
    assert reached(trail.retrace()) == {"a": (1_000, 1_000, 0), "b": (500, 0, 0), "c": (1_000, 0, 1)}

    # Revision 2: the victim did not pay a after all.
    assert trail.add_report(replace(first, transfers=(transfer("t1", "victim", "b", 500, at_ms=5),), revision=2))
    withdrawn = trail.retrace()

    assert withdrawn == {(account("a"), "THB"): None, (account("c"), "THB"): None}
    assert reached(trail.holdings()) == {"b": (500, 0, 0)}

    # Revision 3: it was 800.
    corrected = (transfer("t0", "victim", "a", 800, at_ms=0), transfer("t1", "victim", "b", 500, at_ms=5))
    assert trail.add_report(replace(first, transfers=corrected, revision=3))
    assert reached(trail.retrace()) == {"a": (800, 800, 0), "c": (800, 0, 1)}
    assert reached(trail.holdings()) == {"a": (800, 800, 0), "b": (500, 0, 0), "c": (800, 0, 1)}


def test_the_feed_ahead_of_or_behind_the_report_gives_the_same_trail() -> None:
    reported = report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0))
    transfers = [
        transfer("t1", "a", "b", 700, at_ms=10),
        transfer("t2", "b", "c", 500, at_ms=20),
        transfer("t3", "a", "d", 300, at_ms=30),
        transfer("t4", "d", "b", 300, at_ms=40),
    ]
    ahead: dict[Holding, HoldingTrace] = {}
    follow(ahead, trail_of(*transfers, reported).retrace())

    behind: dict[Holding, HoldingTrace] = {}
    trail = trail_of(reported)
    follow(behind, trail.retrace())
    for move in transfers:
        trail.add_transaction(move)
        follow(behind, trail.retrace())

    assert ahead == behind == trail.holdings()
    assert reached(ahead) == {
        "a": (1_000, 1_000, 0),
        "b": (1_000, 500, 1),  # 700 at hop 1, then 300 more via d at hop 2: the distance stays 1
        "c": (500, 0, 2),
        "d": (300, 300, 1),
    }


def test_reports_whose_money_meets_are_traced_together() -> None:
    r1 = report("r1", transfer("v1", "victim1", "a", 100, at_ms=0))
    r2 = report("r2", transfer("v2", "victim2", "b", 100, at_ms=5))
    transfers = [
        transfer("a-m", "a", "m", 100, at_ms=10),
        transfer("b-m", "b", "m", 100, at_ms=20),
        transfer("m-n", "m", "n", 150, at_ms=30),
    ]
    trail = trail_of(r1, *transfers)
    view: dict[Holding, HoldingTrace] = {}
    follow(view, trail.retrace())
    trail.add_report(r2)  # reaches m only through the feed, so the cases meet during the re-trace
    follow(view, trail.retrace())

    # Traced apart, each case would send its own 100 on from m and n would hold 200 out of a 150 transfer.
    assert reached(view) == {
        "a": (100, 100, 0),
        "b": (100, 100, 0),
        "m": (200, 150, 1),
        "n": (150, 0, 2),
    }
    assert sum(trace.remaining for trace in view.values()) <= 200
    assert steps(view[(account("n"), "THB")]) == [
        ("v1", ("r1",), 0, 100),
        ("v2", ("r2",), 0, 50),
        ("a-m", ("r1",), 1, 100),
        ("b-m", ("r2",), 1, 50),
        ("m-n", ("r1", "r2"), 2, 150),
    ]
    assert view == trail.holdings()


def test_reports_paying_the_same_account_share_its_outflows_whatever_was_traced_before() -> None:
    r1 = report("r1", transfer("v1", "victim1", "a", 100, at_ms=0))
    r2 = report("r2", transfer("v2", "victim2", "a", 100, at_ms=5))
    trail = trail_of(r1, transfer("a-b", "a", "b", 150, at_ms=10))
    trail.retrace()
    trail.add_report(r2)
    changed = trail.retrace()

    assert reached(changed) == {"a": (200, 150, 0), "b": (150, 0, 1)}
    assert trace_at(changed, "b").report_ids == ("r1", "r2")


def test_a_late_earlier_outflow_takes_the_money_and_the_old_trail_is_withdrawn() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 100, at_ms=0)),
        transfer("a-b", "a", "b", 100, at_ms=30),
        transfer("b-d", "b", "d", 100, at_ms=40),
    )
    before = trail.retrace()
    assert reached(before) == {"a": (100, 100, 0), "b": (100, 100, 1), "d": (100, 0, 2)}

    trail.add_transaction(transfer("a-c", "a", "c", 100, at_ms=20))  # reported late, executed first
    after = trail.retrace()

    # a's own trace is unchanged (it still received and passed on 100), so only the rest is re-issued.
    assert after == {
        (account("b"), "THB"): None,
        (account("d"), "THB"): None,
        (account("c"), "THB"): trace_at(after, "c"),
    }
    assert reached(after) == {"c": (100, 0, 1)}
    assert reached(trail.holdings()) == {"a": (100, 100, 0), "c": (100, 0, 1)}


def test_a_new_report_joining_a_traced_case_re_traces_what_it_reaches_downstream() -> None:
    settings = TraceSettings(trace_window_ms=WINDOW_MS, max_hops=2, history_retention_ms=10_000)
    trail = trail_of(
        report("r1", transfer("v1", "victim1", "a", 100, at_ms=100)),
        transfer("a-d", "a", "d", 100, at_ms=110),
        transfer("d-e", "d", "e", 100, at_ms=120),
        transfer("a-p", "a", "p", 100, at_ms=1),  # before r1's money arrived: not followed for r1
        transfer("p-d", "p", "d", 100, at_ms=2),
        settings=settings,
    )
    before = trail.retrace()
    assert reached(before) == {"a": (100, 100, 0), "d": (100, 100, 1), "e": (100, 0, 2)}
    assert trace_at(before, "e").report_ids == ("r1",)

    # r2 pays into a earlier; its money reaches d first (via p, at hop 2). By d-e, r1's money has
    # reached d at hop 1, so d is 1 hop out and d-e is followed; FIFO, it carries r2's money, and r1's
    # 100 stays at d. e's evidence is replaced, a-d is no longer on it.
    trail.add_report(report("r2", transfer("v2", "victim2", "a", 100, at_ms=0)))
    after = trail.retrace()

    assert reached(after) == {"a": (200, 200, 0), "p": (100, 100, 1), "d": (200, 100, 1), "e": (100, 0, 2)}
    assert trace_at(after, "d").report_ids == ("r1", "r2")
    e = trace_at(after, "e")
    assert e.report_ids == ("r2",)
    assert steps(e) == [
        ("v2", ("r2",), 0, 100),
        ("a-p", ("r2",), 1, 100),
        ("p-d", ("r2",), 2, 100),
        ("d-e", ("r2",), 2, 100),
    ]


def test_eviction_drops_transactions_older_than_the_retention_and_never_takes_them_back() -> None:
    settings = TraceSettings(trace_window_ms=100_000, max_hops=4, history_retention_ms=10_000)
    old = transfer("old", "a", "b", 100, at_ms=1)
    trail = trail_of(
        old,
        transfer("just-too-old", "a", "b", 100, at_ms=9_999),
        transfer("at-cutoff", "a", "c", 100, at_ms=10_000),
        transfer("newest", "x", "y", 100, at_ms=20_000),  # the feed's clock: cutoff = 20_000 - 10_000
        settings=settings,
    )

    assert trail.evict() == 2
    assert len(trail) == 2
    # Redelivered, or first seen, after its history was evicted: not indexed, so eviction never changes a trace.
    assert not trail.add_transaction(old)
    assert not trail.add_transaction(transfer("older-than-cutoff", "a", "b", 100, at_ms=9_000))
    assert len(trail) == 2
    trail.add_report(report("r1", transfer("t0", "victim", "a", 300, at_ms=0)))
    changed = trail.retrace()

    # Without eviction b would have 200 of it; only the kept transfer out of a can still carry money.
    assert reached(changed) == {"a": (300, 100, 0), "c": (100, 0, 1)}


def test_eviction_keeps_the_evidence_of_accounts_already_traced() -> None:
    settings = TraceSettings(trace_window_ms=100_000, max_hops=4, history_retention_ms=10_000)
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0)),
        transfer("a-b", "a", "b", 1_000, at_ms=1_000),
        transfer("x-y", "x", "y", 5, at_ms=2_000),  # untraced background, just as old
        settings=settings,
    )
    trail.retrace()
    trail.add_transaction(transfer("late", "q", "r", 5, at_ms=50_000))  # the feed's clock moves on

    # The resolvers forget both old records; a's partition keeps a-b as the evidence of a traced account.
    assert trail.evict() == 2
    assert len(trail) == 1  # late
    assert trail.add_transaction(transfer("a-b", "a", "b", 1_000, at_ms=1_000)) is False  # redelivered: ignored
    trail.add_transaction(transfer("a-later", "a", "z", 5, at_ms=60_000))  # re-traces a
    changed = trail.retrace()

    # Without a-b, b would be released and a's hold would jump back to 1,000.
    assert changed == {}
    assert reached(trail.holdings()) == {"a": (1_000, 1_000, 0), "b": (1_000, 0, 1)}


def test_a_withdrawal_takes_the_oldest_tainted_money_out_of_the_system_and_holds_nothing() -> None:
    paid = transfer("pay", "victim", "mule", 100, 0)
    atm = ("cash", "KBANK", "ATM-0042")
    withdrawn = Transfer("atm-1", account("mule"), atm, 60, "THB", 100)
    onward = transfer("on", "mule", "mule-2", 50, 200)

    traces = trail_of(report("R1", paid), withdrawn, onward).retrace()

    # The withdrawal drew 60 first (FIFO), so only 40 of the 50 sent on was tainted; nothing is held at the ATM.
    assert reached(traces) == {"mule": (100, 100, 0), "mule-2": (40, 0, 1)}
    assert all(holding[0] != atm for holding in traces)


def test_withdrawal_points_do_not_make_a_mule_a_hub() -> None:
    settings = replace(SETTINGS, hub_counterparties=3)
    paid = transfer("pay", "victim", "mule", 100, 0)
    withdrawals = [Transfer(f"atm-{n}", account("mule"), ("cash", "KBANK", f"ATM-{n}"), 10, "THB", 10 + n)
                   for n in range(5)]  # fmt: skip
    onward = transfer("on", "mule", "mule-2", 50, 200)

    traces = trail_of(report("R1", paid), *withdrawals, onward, settings=settings).retrace()

    assert reached(traces) == {"mule": (100, 100, 0), "mule-2": (50, 0, 1)}
    assert traces[(account("mule"), "THB")].hub_reason is None  # type: ignore[union-attr]

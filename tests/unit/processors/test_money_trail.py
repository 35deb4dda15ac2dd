"""The money-trail rule (processors/money_trail.py) on small hand-made cases.

Each case is small enough to work out on paper; the expected numbers in each
test follow from the rule in the module docstring, not from running the code.
"""

from __future__ import annotations

from collections.abc import Mapping

from processors.money_trail import Holding, MoneyTrail, Taint, TraceSettings
from processors.records import AccountKey, Report, Transfer

WINDOW_MS = 1_000
SETTINGS = TraceSettings(trace_window_ms=WINDOW_MS, max_hops=4, history_retention_ms=10_000)


def account(name: str) -> AccountKey:
    return ("bank", "KBANK", name)


def transfer(txn_id: str, source: str, target: str, amount: int, at_ms: int, currency: str = "THB") -> Transfer:
    return Transfer(txn_id, account(source), account(target), amount, currency, at_ms)


def report(report_id: str, *transfers: Transfer, received_at_ms: int = 50_000) -> Report:
    reported_at_ms = max(t.at_ms for t in transfers) + 1
    return Report(report_id, reported_at_ms, received_at_ms, f"victim-{report_id}", "TH", "investment", transfers)


def trail_of(*events: Report | Transfer, settings: TraceSettings = SETTINGS) -> MoneyTrail:
    trail = MoneyTrail(settings)
    for event in events:
        if isinstance(event, Report):
            trail.add_report(event)
        else:
            trail.add_transaction(event)
    return trail


def reached(changed: Mapping[Holding, Taint | None], currency: str = "THB") -> dict[str, tuple[int, int, int]]:
    """Account name -> (received, moved_on, hop) for every holding the trace reaches in ``currency``."""
    return {
        target[2]: (taint.received, taint.moved_on, taint.hop)
        for (target, in_currency), taint in changed.items()
        if taint is not None and in_currency == currency
    }


def taint_at(changed: Mapping[Holding, Taint | None], name: str, currency: str = "THB") -> Taint:
    taint = changed[(account(name), currency)]
    assert taint is not None, f"{name} is not reached"
    return taint


def follow(view: dict[Holding, Taint], changed: dict[Holding, Taint | None]) -> None:
    """Apply one retrace to what a consumer of its output would know."""
    for holding, taint in changed.items():
        if taint is None:
            view.pop(holding, None)
        else:
            view[holding] = taint


def test_a_reported_transfer_puts_the_money_at_its_target_as_hop_0() -> None:
    trail = trail_of(report("r1", transfer("t0", "victim", "a", 500, at_ms=100)))

    changed, owners = trail.retrace()

    assert reached(changed) == {"a": (500, 0, 0)}
    taint = taint_at(changed, "a")
    assert taint.remaining == 500
    assert taint.report_ids == {"r1"}
    assert taint.first_arrival_ms == taint.last_arrival_ms == 100
    assert owners[(account("a"), "THB")].report_ids == {"r1"}


def test_money_is_followed_through_a_chain_of_mules_with_what_each_kept() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0)),
        transfer("t1", "a", "b", 1_000, at_ms=10),
        transfer("t2", "b", "c", 900, at_ms=20),  # b keeps 100
        transfer("t3", "c", "d", 900, at_ms=30),
        transfer("t4", "d", "e", 400, at_ms=40),  # d keeps 500
    )

    changed, owners = trail.retrace()

    assert reached(changed) == {
        "a": (1_000, 1_000, 0),
        "b": (1_000, 900, 1),
        "c": (900, 900, 2),
        "d": (900, 400, 3),
        "e": (400, 0, 4),
    }
    e = taint_at(changed, "e")
    assert [(s.txn_id, s.hop, s.tainted_amount) for s in owners[(account("e"), "THB")].trail(e)] == [
        ("t0", 0, 1_000),
        ("t1", 1, 1_000),
        ("t2", 2, 900),
        ("t3", 3, 900),
        ("t4", 4, 400),
    ]


def test_an_outflow_draws_on_the_oldest_tainted_lot_first() -> None:
    trail = trail_of(
        report("r1", transfer("t1", "victim1", "a", 100, at_ms=10)),
        report("r2", transfer("t2", "victim2", "a", 50, at_ms=20)),
        transfer("out1", "a", "b", 120, at_ms=30),  # all 100 of r1's lot, then 20 of r2's
        transfer("out2", "a", "c", 30, at_ms=40),  # the 30 left of r2's lot
    )

    changed, owners = trail.retrace()

    assert reached(changed) == {"a": (150, 150, 0), "b": (120, 0, 1), "c": (30, 0, 1)}
    assert taint_at(changed, "b").report_ids == {"r1", "r2"}
    assert taint_at(changed, "c").report_ids == {"r2"}
    steps = owners[(account("b"), "THB")].steps
    assert steps[("out1", "r1", 1)].tainted_amount == 100
    assert steps[("out1", "r2", 1)].tainted_amount == 20


def test_an_account_never_passes_on_more_tainted_money_than_it_received() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 100, at_ms=0)),
        transfer("big", "a", "b", 250, at_ms=10),  # 150 of it is someone else's money
        transfer("after", "a", "c", 80, at_ms=20),  # nothing tainted left to carry
    )

    changed, _ = trail.retrace()

    assert reached(changed) == {"a": (100, 100, 0), "b": (100, 0, 1)}


def test_money_that_left_before_the_tainted_money_arrived_is_not_followed() -> None:
    trail = trail_of(
        transfer("earlier", "a", "b", 100, at_ms=9),
        report("r1", transfer("t0", "victim", "a", 100, at_ms=10)),
        transfer("later", "a", "c", 40, at_ms=11),
    )

    changed, _ = trail.retrace()

    assert reached(changed) == {"a": (100, 40, 0), "c": (40, 0, 1)}


def test_outflows_later_than_the_trace_window_after_the_arrival_are_not_followed() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 200, at_ms=0)),
        transfer("at-window", "a", "b", 100, at_ms=WINDOW_MS),
        transfer("past-window", "a", "c", 100, at_ms=WINDOW_MS + 1),
    )

    changed, _ = trail.retrace()

    # The 100 still there is treated as held by a.
    assert reached(changed) == {"a": (200, 100, 0), "b": (100, 0, 1)}


def test_the_trace_window_runs_from_each_lots_own_arrival() -> None:
    trail = trail_of(
        report("r1", transfer("t1", "victim1", "a", 100, at_ms=0)),
        report("r2", transfer("t2", "victim2", "a", 100, at_ms=900)),
        # r1's lot is past the window, r2's is not: only r2's 100 goes on.
        transfer("out", "a", "b", 150, at_ms=1_500),
    )

    changed, _ = trail.retrace()

    assert reached(changed) == {"a": (200, 100, 0), "b": (100, 0, 1)}
    assert taint_at(changed, "b").report_ids == {"r2"}


def test_max_hops_bounds_the_trail() -> None:
    settings = TraceSettings(trace_window_ms=WINDOW_MS, max_hops=2, history_retention_ms=10_000)
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 100, at_ms=0)),
        transfer("t1", "a", "b", 100, at_ms=10),
        transfer("t2", "b", "c", 100, at_ms=20),
        transfer("t3", "c", "d", 100, at_ms=30),
        settings=settings,
    )

    changed, owners = trail.retrace()

    # The money left c, so c holds none of it, but d is one hop too far to follow.
    assert reached(changed) == {"a": (100, 100, 0), "b": (100, 100, 1), "c": (100, 100, 2)}
    assert owners[(account("c"), "THB")].beyond_max_hops == 100


def test_transfers_in_another_currency_do_not_carry_the_taint() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 100, at_ms=0)),
        transfer("usd", "a", "b", 100, at_ms=10, currency="USD"),
        transfer("thb", "a", "c", 60, at_ms=20),
    )

    changed, _ = trail.retrace()

    assert reached(changed) == {"a": (100, 60, 0), "c": (60, 0, 1)}
    assert reached(changed, currency="USD") == {}


def test_a_redelivered_transaction_is_ignored() -> None:
    trail = trail_of(report("r1", transfer("t0", "victim", "a", 100, at_ms=0)))
    move = transfer("t1", "a", "b", 60, at_ms=10)
    assert trail.add_transaction(move)
    first, _ = trail.retrace()

    assert not trail.add_transaction(move)
    again, _ = trail.retrace()

    assert reached(first) == {"a": (100, 60, 0), "b": (60, 0, 1)}
    assert again == {}
    assert len(trail.index) == 1


def test_a_redelivered_report_is_ignored_even_if_received_again_later() -> None:
    original = report("r1", transfer("t0", "victim", "a", 100, at_ms=0), received_at_ms=5_000)
    redelivered = report("r1", transfer("t0", "victim", "a", 100, at_ms=0), received_at_ms=9_000)
    trail = trail_of(original)
    trail.retrace()

    assert not trail.add_report(original)
    assert not trail.add_report(redelivered)
    changed, _ = trail.retrace()

    assert changed == {}
    assert trail.reports["r1"].received_at_ms == 5_000  # the first receipt starts the clock


def test_the_feed_ahead_of_or_behind_the_report_gives_the_same_trail() -> None:
    reported = report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0))
    feed = [
        transfer("t1", "a", "b", 700, at_ms=10),
        transfer("t2", "b", "c", 500, at_ms=20),
        transfer("t3", "a", "d", 300, at_ms=30),
        transfer("t4", "d", "b", 300, at_ms=40),
    ]
    ahead: dict[Holding, Taint] = {}
    trail = trail_of(*feed, reported)
    follow(ahead, trail.retrace()[0])

    behind: dict[Holding, Taint] = {}
    trail = trail_of(reported)
    follow(behind, trail.retrace()[0])
    for move in feed:
        trail.add_transaction(move)
        follow(behind, trail.retrace()[0])

    assert reached(ahead) == reached(behind)
    assert reached(ahead) == {
        "a": (1_000, 1_000, 0),
        "b": (1_000, 500, 1),
        "c": (500, 0, 2),
        "d": (300, 300, 1),
    }


def test_reports_whose_money_meets_are_traced_as_one_case() -> None:
    r1 = report("r1", transfer("v1", "victim1", "a", 100, at_ms=0))
    r2 = report("r2", transfer("v2", "victim2", "b", 100, at_ms=5))
    feed = [
        transfer("a-m", "a", "m", 100, at_ms=10),
        transfer("b-m", "b", "m", 100, at_ms=20),
        transfer("m-n", "m", "n", 150, at_ms=30),
    ]
    trail = trail_of(r1, *feed)
    view: dict[Holding, Taint] = {}
    follow(view, trail.retrace()[0])
    trail.add_report(r2)  # reaches m only through the feed, so the cases meet during the re-trace
    follow(view, trail.retrace()[0])

    # Traced apart, each case would send its own 100 on from m and n would hold 200 out of a 150 transfer.
    assert reached(view) == {
        "a": (100, 100, 0),
        "b": (100, 100, 0),
        "m": (200, 150, 1),
        "n": (150, 0, 2),
    }
    assert taint_at(view, "n").report_ids == {"r1", "r2"}
    assert sum(taint.remaining for taint in view.values()) <= 200
    assert [trace.report_ids for trace in trail.traces.values()] == [frozenset({"r1", "r2"})]


def test_reports_paying_the_same_account_are_one_case_whatever_was_traced_before() -> None:
    r1 = report("r1", transfer("v1", "victim1", "a", 100, at_ms=0))
    r2 = report("r2", transfer("v2", "victim2", "a", 100, at_ms=5))
    trail = trail_of(r1, transfer("a-b", "a", "b", 150, at_ms=10))
    trail.retrace()
    trail.add_report(r2)
    changed, _ = trail.retrace()

    assert reached(changed) == {"a": (200, 150, 0), "b": (150, 0, 1)}
    assert [trace.report_ids for trace in trail.traces.values()] == [frozenset({"r1", "r2"})]


def test_a_late_earlier_outflow_takes_the_money_and_the_old_trail_is_withdrawn() -> None:
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 100, at_ms=0)),
        transfer("a-b", "a", "b", 100, at_ms=30),
        transfer("b-d", "b", "d", 100, at_ms=40),
    )
    before, _ = trail.retrace()
    assert reached(before) == {"a": (100, 100, 0), "b": (100, 100, 1), "d": (100, 0, 2)}

    trail.add_transaction(transfer("a-c", "a", "c", 100, at_ms=20))  # reported late, executed first
    after, _ = trail.retrace()

    assert after[(account("b"), "THB")] is None
    assert after[(account("d"), "THB")] is None
    assert reached(after) == {"a": (100, 100, 0), "c": (100, 0, 1)}


def test_eviction_drops_transactions_older_than_the_retention() -> None:
    settings = TraceSettings(trace_window_ms=100_000, max_hops=4, history_retention_ms=10_000)
    trail = trail_of(
        transfer("old", "a", "b", 100, at_ms=1),
        transfer("just-too-old", "a", "b", 100, at_ms=9_999),
        transfer("at-cutoff", "a", "c", 100, at_ms=10_000),
        transfer("newest", "x", "y", 100, at_ms=20_000),  # the feed's clock: cutoff = 20_000 - 10_000
        settings=settings,
    )

    assert trail.evict() == 2
    assert len(trail.index) == 2
    trail.add_report(report("r1", transfer("t0", "victim", "a", 300, at_ms=0)))
    changed, _ = trail.retrace()

    # Without eviction b would have 200 of it; only the kept transfer out of a can still carry money.
    assert reached(changed) == {"a": (300, 100, 0), "c": (100, 0, 1)}


def test_a_new_report_joining_a_traced_case_withdraws_what_the_joint_trace_no_longer_reaches() -> None:
    settings = TraceSettings(trace_window_ms=WINDOW_MS, max_hops=2, history_retention_ms=10_000)
    trail = trail_of(
        report("r1", transfer("v1", "victim1", "a", 100, at_ms=100)),
        transfer("a-d", "a", "d", 100, at_ms=110),
        transfer("d-e", "d", "e", 100, at_ms=120),
        transfer("a-p", "a", "p", 100, at_ms=1),  # before r1's money arrived: not followed for r1
        transfer("p-d", "p", "d", 100, at_ms=2),
        settings=settings,
    )
    before, _ = trail.retrace()
    assert reached(before) == {"a": (100, 100, 0), "d": (100, 100, 1), "e": (100, 0, 2)}

    # r2 pays into a earlier; its money reaches d first, at the last hop followed, so d -> e
    # carries r2's money (one hop too far) and r1's 100 stays at d.
    trail.add_report(report("r2", transfer("v2", "victim2", "a", 100, at_ms=0)))
    after, _ = trail.retrace()

    assert after[(account("e"), "THB")] is None
    assert reached(after) == {"a": (200, 200, 0), "p": (100, 100, 1), "d": (200, 100, 1)}


def test_eviction_keeps_the_evidence_of_cases_already_traced() -> None:
    settings = TraceSettings(trace_window_ms=100_000, max_hops=4, history_retention_ms=10_000)
    trail = trail_of(
        report("r1", transfer("t0", "victim", "a", 1_000, at_ms=0)),
        transfer("a-b", "a", "b", 1_000, at_ms=1_000),
        transfer("x-y", "x", "y", 5, at_ms=2_000),  # untraced background, just as old
        settings=settings,
    )
    trail.retrace()
    trail.add_transaction(transfer("late", "q", "r", 5, at_ms=50_000))  # the feed's clock moves on

    assert trail.evict() == 1  # only the background transfer goes
    trail.add_transaction(transfer("a-later", "a", "z", 5, at_ms=60_000))  # re-traces r1's case
    changed, _ = trail.retrace()

    # Without a-b, b would be released and a's hold would jump back to 1,000.
    assert reached(changed) == {"a": (1_000, 1_000, 0), "b": (1_000, 0, 1)}

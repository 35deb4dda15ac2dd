"""The re-trace benchmark's scenarios do what their figures claim, at a tiny size (no speed is asserted)."""

from __future__ import annotations

from pipeline.bench_retrace import (
    CASE_HOLD_MINOR,
    Feed,
    build_case,
    case_fanout,
    measure_case,
    measure_fan_in,
    percentile,
)
from pipeline.interception import Interception
from pipeline.settings import Settings

START_MS = 1_790_000_000_000


def test_the_case_taints_every_account_within_max_hops_and_each_keeps_its_share() -> None:
    settings = Settings()
    case = build_case(200, START_MS, max_hops=settings.max_hops)
    interception = Interception(settings)
    interception.process(Feed(settings).records(case.payloads, case.settled_ms), case.settled_ms)

    holdings = interception.trail.holdings()
    assert {account for account, _ in holdings} == set(case.accounts)
    assert all(trace.remaining == CASE_HOLD_MINOR for trace in holdings.values())
    assert max(trace.hop for trace in holdings.values()) == settings.max_hops
    assert len(interception.actions.live("freeze")) == 200


def test_the_fanout_is_the_smallest_that_reaches_the_accounts() -> None:
    assert case_fanout(10_000, 10, 4) == 6  # 10 * (1 + 6 + 36 + 216 + 1296) >= 10,000 > 10 * (1 + 5 + ... + 625)
    assert case_fanout(50, 10, 4) == 1  # chains of five


def test_measure_case_times_batches_of_transactions_that_touch_the_case() -> None:
    figures = measure_case(Settings(), accounts=200, batches=3, per_batch=50, start_ms=START_MS)

    assert figures.tainted == 200 and figures.live_orders == 200
    assert len(figures.batches.ms) == 3 and len(figures.retraces.ms) == 3
    assert min(figures.batches.ms) > 0 and figures.batches.p99 >= figures.batches.p50 > 0
    assert figures.retraces.p50 > 0
    # every new transaction draws on its source's taint, so it changes that holding at least
    assert figures.holdings_per_batch >= 50 and figures.orders_per_batch >= 50


def test_measure_fan_in_ends_with_every_report_at_the_cash_out() -> None:
    figures = measure_fan_in(Settings(), victims=30, per_batch=10, start_ms=START_MS)

    assert figures.reports_at_cash_out == 30
    assert len(figures.batches.ms) == 3 and figures.batches.total_s > 0
    assert figures.batches.p99 >= figures.batches.p50 > 0


def test_a_percentile_is_the_nearest_rank() -> None:
    """p99 of 200 samples is the second largest, not the largest; of 40 it can only be the largest."""
    assert percentile(range(1, 201), 0.99) == 198
    assert percentile(range(1, 41), 0.99) == 40
    assert percentile(range(1, 101), 0.5) == 50
    assert percentile([7.5], 0.99) == 7.5

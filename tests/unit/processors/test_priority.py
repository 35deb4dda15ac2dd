"""Freeze priority (processors/priority.py): each input moves the score the way the docstring says.

Every direction is checked with the other inputs held equal, once on a worked
example (strictly) and once for any inputs (never the wrong way).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.priority import DAY_MS, freeze_priority, priority_band

REPORTED_MS = 10 * DAY_MS
# 1,000.00 THB received, half of it still there, two hops out, arrived half a day before the report.
BASE: dict[str, Any] = {
    "remaining": 50_000,
    "received": 100_000,
    "currency": "THB",
    "hop": 2,
    "max_hops": 4,
    "last_arrival_ms": REPORTED_MS - DAY_MS // 2,
    "latest_report_ms": REPORTED_MS,
    "report_count": 1,
}


def priority(**changes: Any) -> int:
    return freeze_priority(**{**BASE, **changes})


def test_more_money_still_in_the_account_is_more_urgent() -> None:
    assert priority(remaining=0) < priority(remaining=20_000) < priority(remaining=60_000) < priority(remaining=100_000)


def test_a_more_recent_arrival_relative_to_the_latest_report_is_more_urgent() -> None:
    days_before_report = [5, 2, 1, 0]
    scores = [priority(last_arrival_ms=REPORTED_MS - days * DAY_MS) for days in days_before_report]
    assert scores == sorted(set(scores))
    # Money that arrived after the report is as fresh as it gets, not fresher.
    assert priority(last_arrival_ms=REPORTED_MS + DAY_MS) == priority(last_arrival_ms=REPORTED_MS)


def test_more_corroborating_reports_are_more_urgent_up_to_four() -> None:
    scores = [priority(report_count=count) for count in (1, 2, 3, 4)]
    assert scores == sorted(set(scores))
    assert priority(report_count=9) == priority(report_count=4)


def test_a_greater_hop_distance_is_less_urgent_when_money_has_moved_on() -> None:
    scores = [priority(hop=hop) for hop in (0, 1, 2, 3, 4)]
    assert scores == sorted(set(scores), reverse=True)


def test_hop_distance_makes_no_difference_when_nothing_moved_on() -> None:
    scores = {priority(remaining=100_000, hop=hop) for hop in (0, 1, 2, 3, 4)}
    assert len(scores) == 1


def test_size_is_measured_in_major_units_and_saturates_at_a_million() -> None:
    everything_held = {"hop": 0}
    # 1,000,000 JPY has no minor units; 1,000,000 THB is 100,000,000 satang.
    jpy = priority(remaining=1_000_000, received=1_000_000, currency="JPY", **everything_held)
    thb = priority(remaining=100_000_000, received=100_000_000, currency="THB", **everything_held)
    assert jpy == thb
    assert priority(remaining=10**12, received=10**12, **everything_held) == thb
    assert priority(remaining=1_000_000, received=1_000_000, **everything_held) < thb


def test_the_extremes_are_0_and_100() -> None:
    most_urgent = priority(remaining=10**9, received=10**9, hop=0, last_arrival_ms=REPORTED_MS, report_count=4)
    # All of it moved on from the farthest hop, a month before the report: the penalty outweighs what is left.
    least_urgent = priority(remaining=0, hop=4, last_arrival_ms=REPORTED_MS - 30 * DAY_MS)
    assert most_urgent == 100
    assert least_urgent == 0


@st.composite
def priority_inputs(draw: st.DrawFn) -> dict[str, Any]:
    received = draw(st.integers(min_value=0, max_value=10**15))
    return {
        "remaining": draw(st.integers(min_value=0, max_value=received)),
        "received": received,
        "currency": draw(st.sampled_from(["THB", "JPY", "KWD", "BTC"])),
        "hop": draw(st.integers(min_value=0, max_value=8)),
        "max_hops": draw(st.integers(min_value=0, max_value=6)),
        "last_arrival_ms": draw(st.integers(min_value=0, max_value=60 * DAY_MS)),
        "latest_report_ms": draw(st.integers(min_value=0, max_value=60 * DAY_MS)),
        "report_count": draw(st.integers(min_value=1, max_value=10)),
    }


@settings(max_examples=200, deadline=None)
@given(inputs=priority_inputs(), step=st.integers(min_value=1, max_value=10**6))
def test_no_input_ever_moves_the_score_the_wrong_way_or_out_of_range(inputs: dict[str, Any], step: int) -> None:
    score = freeze_priority(**inputs)
    assert 0 <= score <= 100
    more_held = min(inputs["received"], inputs["remaining"] + step)
    assert freeze_priority(**{**inputs, "remaining": more_held}) >= score
    assert freeze_priority(**{**inputs, "last_arrival_ms": inputs["last_arrival_ms"] + step}) >= score
    assert freeze_priority(**{**inputs, "report_count": inputs["report_count"] + 1}) >= score
    assert freeze_priority(**{**inputs, "hop": inputs["hop"] + 1}) <= score


@pytest.mark.parametrize(
    ("priority_value", "band"),
    [
        (0, "low"),
        (39, "low"),
        (40, "medium"),
        (59, "medium"),
        (60, "high"),
        (79, "high"),
        (80, "critical"),
        (100, "critical"),
    ],
)
def test_priority_band_boundaries(priority_value: int, band: str) -> None:
    assert priority_band(priority_value) == band

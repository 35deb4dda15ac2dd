"""Bench (i) divides the heap a store grew by the items it took, at a tiny size (no figure is asserted)."""

from __future__ import annotations

import pytest

from pipeline.bench_durable import measure_store_memory


def test_each_store_is_measured_over_items_it_really_took() -> None:
    memory = measure_store_memory(telecom_events=2_000, cases=100, accounts=500)
    assert memory.cases > 0
    assert memory.per_telecom_event > 0
    assert memory.per_account_seen > 0
    # A case holds its report, the accounts traced and its actions: far more than one account seen.
    assert memory.per_reported_case > 10 * memory.per_account_seen


def test_a_feed_that_sent_none_of_the_items_is_refused() -> None:
    with pytest.raises(RuntimeError, match="no telecom-events"):
        measure_store_memory(telecom_events=0, cases=20, accounts=500)

"""Bench (m) times the worker's batch on the path that indexes, at a tiny size (no speed is asserted)."""

from __future__ import annotations

import pytest

from pipeline.bench_split import measure_indexing_split
from processors.money_trail import MoneyTrail
from processors.records import Transfer


def test_every_step_of_the_batch_is_timed_over_every_transaction() -> None:
    split = measure_indexing_split(3_000, batch=1_000)
    assert split.transactions == 3_000
    steps = (split.ingest_us, split.decide_us, split.stage_us, split.encode_us, split.write_us)
    assert all(us > 0 for us in steps)
    assert split.total_us == pytest.approx(sum(steps))


def test_a_run_that_indexed_nothing_is_refused_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(trail: MoneyTrail, transfer: Transfer) -> bool:
        return False  # what a store restored from an earlier run's changelog answers: a redelivery

    monkeypatch.setattr(MoneyTrail, "add_transaction", refuse)
    with pytest.raises(RuntimeError, match="0 of 3,000 transactions indexed"):
        measure_indexing_split(3_000, batch=1_000)

"""Bench (k) measures what it says, at a tiny size (no speed is asserted)."""

from __future__ import annotations

from pipeline.bench_partitioned import measure_partitioned_trail


def test_two_processes_index_every_transfer_once_and_the_crossing_messages_are_counted() -> None:
    spread = measure_partitioned_trail(4_000, partitions=4)
    assert spread.transfers == 4_000  # the measurement itself checks both runs indexed each one once
    # A transfer's feed record and its two accounts' records each land on one of 4 partitions; the other
    # process owns half of them: about 1.5 messages cross per transfer (fewer when both accounts are the same).
    assert 1.3 < spread.messages_per_transfer < 1.7
    assert spread.bytes_per_transfer > 50 * spread.messages_per_transfer

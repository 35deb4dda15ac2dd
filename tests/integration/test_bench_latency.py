"""Bench (d) measures what it prints: each report's first freeze, read back from a worker in its own process."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.bench import LATENCY_SAMPLES, _measure_latency
from pipeline.settings import Settings

pytestmark = pytest.mark.integration


async def test_each_report_is_timed_to_its_first_freeze_and_the_feed_to_its_real_rate(
    settings: Settings, tmp_path: Path
) -> None:
    run = await _measure_latency(settings, settings.bootstrap_servers or "", 500, worker_dir=tmp_path)

    assert len(run.latencies) == LATENCY_SAMPLES
    assert all(0 < latency < math.inf for latency in run.latencies)
    assert 0 < run.feed_tps <= 600  # it never sends faster than asked
    assert run.feed_lag >= 0


async def test_a_worker_that_cannot_start_fails_the_bench_with_its_reason(settings: Settings, tmp_path: Path) -> None:
    """Not after the 120 s the worker is given to join: the process is watched while it is waited for."""
    unsigned = settings.model_copy(update={"signing_key_dir": None})  # with_overrides keeps what None would unset
    with pytest.raises(RuntimeError, match="no signing key is configured"):
        await _measure_latency(unsigned, settings.bootstrap_servers or "", 500, worker_dir=tmp_path)

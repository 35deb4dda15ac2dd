"""``interceptor simulate`` end to end: a small town's scams through the real broker and worker, scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.scenario import small_town
from pipeline.settings import Settings
from pipeline.simulate import DirectPort, Simulation, simulate_through_broker, write_results

pytestmark = pytest.mark.integration


async def test_a_small_world_through_the_broker_is_scored_like_the_batch_step_alone(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    fast = settings.with_overrides(batch_timeout_ms=2, fetch_max_wait_ms=2)
    through_broker = Simulation(small_town(), fast)
    await simulate_through_broker(through_broker, kafka_bootstrap)
    alone = Simulation(small_town(), fast)
    await alone.drive(DirectPort(alone))

    scores, summary = through_broker.score()
    write_results(tmp_path / "out", scores, summary)

    assert {path.name for path in (tmp_path / "out").iterdir()} == {"summary.json", "table.txt", "effectiveness.png"}
    overall = summary["overall"]
    assert overall["reports"] == len(through_broker.reports) > 10
    for score in scores:
        assert 0 <= score.frozen <= score.reachable <= score.reported
        assert sum(score.lost.values()) == score.reachable - score.frozen
    assert overall["reports_without_a_freeze"] == 0
    assert overall["report_to_first_freeze_s"]["p50"] < 5
    # Batches through the broker fall differently, but what the first orders after each report hold does not.
    direct = {score.report_id: (score.frozen, score.reachable) for score in alone.score()[0]}
    assert {score.report_id: (score.frozen, score.reachable) for score in scores} == direct

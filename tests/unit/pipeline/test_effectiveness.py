"""The accounting of interception effectiveness: frozen <= reachable <= reported, whatever the orders say."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connectors.ledger import Ledger
from connectors.scenario import small_town
from pipeline.effectiveness import (
    BUCKETS,
    DAY_MS,
    RULES,
    FreezeVersion,
    ReportScore,
    Rules,
    SentReport,
    score_reports,
    summarise,
    table,
)
from pipeline.settings import Settings
from pipeline.simulate import DirectPort, Simulation, write_results


@pytest.fixture(scope="module")
async def simulation() -> Simulation:
    simulation = Simulation(small_town(), Settings())
    await simulation.drive(DirectPort(simulation))
    return simulation


def _holds(scores: list[ReportScore]) -> None:
    for score in scores:
        assert 0 <= score.frozen_executed <= score.frozen <= score.reachable <= score.reported, score
        assert 0 <= score.held_any_order <= score.reachable, score
        assert sum(score.lost.values()) == score.reachable - score.frozen, score
        assert set(score.lost) <= set(RULES)


def _totals_hold(figures: dict[str, Any]) -> None:
    assert 0 <= figures["frozen_executed_thb"] <= figures["frozen_thb"] <= figures["reachable_thb"]
    assert figures["reachable_thb"] <= figures["reported_thb"]


async def test_frozen_never_exceeds_reachable_nor_reachable_reported(simulation: Simulation) -> None:
    scores, summary = simulation.score()

    assert len(scores) == len(simulation.reports) > 10
    _holds(scores)
    _totals_hold(summary["overall"])
    for bucket in summary["buckets"]:
        _totals_hold(bucket)
    assert sum(b["reports"] for b in summary["buckets"]) == summary["overall"]["reports"]
    assert [b["bucket"] for b in summary["buckets"]] == [bucket.label for bucket in BUCKETS]


async def test_the_pipeline_freezes_money_in_the_small_town(simulation: Simulation) -> None:
    _, summary = simulation.score()
    overall = summary["overall"]

    assert overall["reachable_thb"] > 0
    assert overall["frozen_over_reachable"] > 0.5
    assert summary["buckets"][0]["frozen_over_reported"] > summary["buckets"][3]["frozen_over_reported"]
    assert overall["lost_thb_by_rule"].get("untraced", 0) < 0.01 * overall["reachable_thb"]
    assert summary["telecom"]["named_gang_numbers_suspended"] == summary["telecom"]["gang_numbers_named_in_reports"]
    assert summary["telecom"]["innocent_numbers_suspended"] == 0


async def test_the_accounting_holds_for_any_orders_at_all(simulation: Simulation) -> None:
    """Orders holding nonsense (huge holds, the wrong reports, accounts with no stolen money) change nothing."""
    rng = random.Random(7)
    report_ids = [report.report_id for report in simulation.reports]
    wild = [
        replace(
            version,
            hold=rng.choice([0, 1, version.hold, version.hold * 1000, 10**15]),
            report_ids=tuple(rng.sample(report_ids, rng.randint(1, 5))),
            complete=rng.random() < 0.8,
            hub=rng.random() < 0.1,
        )
        for version in simulation.versions
    ]
    wild += [
        FreezeVersion("frz-x", 1, account, "THB", 10**12, (report_id,), True, False, 0)
        for account, report_id in zip(simulation.world.people[:50], report_ids, strict=False)
    ]
    scores = score_reports(simulation.reports, wild, simulation.world.ledger, simulation.rules, lambda _: 60_000)

    _holds(scores)
    _totals_hold(summarise(scores)["overall"])


async def test_the_results_are_written_and_printed(simulation: Simulation, tmp_path: Path) -> None:
    scores, summary = simulation.score()

    write_results(tmp_path, scores, summary)

    assert {path.name for path in tmp_path.iterdir()} == {"summary.json", "table.txt", "effectiveness.png"}
    assert (tmp_path / "effectiveness.png").read_bytes().startswith(b"\x89PNG")
    text = table(summary)
    assert text.splitlines()[0].startswith("delay") and "all" in text.splitlines()[-1]


# -- one collector, two victims: who the trace credits, and what the scoring calls a loss ---------------

PERSON_U, PERSON_R, COLLECTOR = ("bank", "B1", "u"), ("bank", "B1", "r"), ("bank", "B1", "collector")
RULES_HERE = Rules(trace_window_ms=DAY_MS, max_hops=4, history_retention_ms=7 * DAY_MS)


def _collector_world() -> Ledger:
    """U pays the collector 100 at t=0, R pays 100 at t=10; the gang cashes 100 out at t=20: U's money, so R's stays."""
    ledger = Ledger()
    for person in (PERSON_U, PERSON_R):
        ledger.open(person, "person", "THB", 1_000, 0)
    ledger.open(COLLECTOR, "collector", "THB", 0, 0)
    ledger.transfer("t-u", PERSON_U, COLLECTOR, "THB", 100, 0, theft_case=1)
    ledger.transfer("t-r", PERSON_R, COLLECTOR, "THB", 100, 10, theft_case=2)
    ledger.withdraw(COLLECTOR, "THB", 100, 20, on_feed=True)
    return ledger


def _report(ledger: Ledger, case: int, at_ms: int) -> SentReport:
    return SentReport(f"R-{case}", case, at_ms, at_ms, tuple(ledger.lots_of(case)))


def _order(report_id: str, hold: int, at_ms: int, version: int = 1) -> FreezeVersion:
    return FreezeVersion("frz-c", version, COLLECTOR, "THB", hold, (report_id,), True, False, at_ms)


def test_money_left_in_place_of_an_unreported_victims_is_put_down_to_unreported_money() -> None:
    """Drawing reported money first, the trace says R's money left; it was U's, and U never reported."""
    ledger = _collector_world()
    report = _report(ledger, 2, 30)

    [score] = score_reports([report], [_order("R-2", 0, 30)], ledger, RULES_HERE, lambda _: 0)

    assert (score.reachable, score.frozen) == (100, 0)
    assert score.lost == {"unreported money": 100}


def test_money_left_in_place_of_another_reported_victims_is_put_down_to_mixed_money() -> None:
    ledger = _collector_world()
    reports = [_report(ledger, 1, 5), _report(ledger, 2, 30)]
    versions = [_order("R-1", 100, 5), _order("R-2", 0, 30, version=2)]

    scores = score_reports(reports, versions, ledger, RULES_HERE, lambda _: 0)

    assert scores[1].lost == {"mixed money": 100}


def test_money_held_by_an_order_naming_another_report_counts_as_held_under_any_order_only() -> None:
    """R's money sits under a hold the trace credits to U's report: held, but not frozen for R."""
    ledger = _collector_world()
    reports = [_report(ledger, 1, 5), _report(ledger, 2, 30)]
    versions = [_order("R-1", 100, 5), FreezeVersion("frz-r", 1, PERSON_R, "THB", 0, ("R-2",), True, False, 30)]

    scores = score_reports(reports, versions, ledger, RULES_HERE, lambda _: 0)

    assert (scores[1].frozen, scores[1].held_any_order) == (0, 100)
    assert scores[1].held_any_order <= scores[1].reachable

"""The operator's view: the CLI commands and the worker's Prometheus endpoint, against a real broker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from kafka_client import HOUR, account, now, produce, report, transaction, wait_consumed

from pipeline.broker import free_port
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.topics import catalogue, wire_models
from pipeline.worker import InterceptionWorker

pytestmark = pytest.mark.integration


def interceptor(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "command", [[], ["broker"], ["topics", "create"], ["worker"], ["keys"], ["demo"], ["schemas", "export"], ["bench"]]
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = interceptor(*command, "--help")
    assert result.returncode == 0 and "usage: interceptor" in result.stdout


def test_worker_without_a_broker_says_how_to_give_one() -> None:
    result = interceptor("worker", "--insecure-dev-keys", env={"KAFKA_BOOTSTRAP_SERVERS": ""})
    assert result.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr and "Traceback" not in result.stderr


def test_topics_create_makes_the_whole_catalogue(kafka_bootstrap: str) -> None:
    prefix = f"cli{free_port()}."
    first = interceptor("topics", "create", "--bootstrap", kafka_bootstrap, env={"INTERCEPTOR_TOPIC_PREFIX": prefix})
    again = interceptor("topics", "create", "--bootstrap", kafka_bootstrap, env={"INTERCEPTOR_TOPIC_PREFIX": prefix})
    assert first.returncode == 0, first.stderr
    assert all(prefix + topic.name in first.stdout for topic in catalogue(0))
    assert again.returncode == 0 and "all topics exist" in again.stdout


def test_schemas_export_writes_one_json_schema_per_topic(tmp_path: Path) -> None:
    result = interceptor("schemas", "export", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{name}.schema.json" for name in wire_models())
    for name, model in wire_models().items():
        schema = json.loads((tmp_path / f"{name}.schema.json").read_text())
        assert set(schema["required"]) >= {field for field, info in model.model_fields.items() if info.is_required()}


def test_demo_runs_the_whole_system_and_cleans_up(tmp_path: Path) -> None:
    result = interceptor(
        "demo", "--duration", "45", env={"INTERCEPTOR_DATA_DIR": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": ""},
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = result.stdout.split("summary", 1)[1]
    assert re.search(r"events in\s+\d+", summary)
    assert re.search(r"dead letters\s+[1-9]", summary), "the feed's deliberately bad messages must be dead-lettered"
    assert re.search(r"actions out\s+[1-9]\d* versions", summary)
    assert re.search(r"report→action\s+p50 \d+ ms, p99 \d+ ms", summary)
    assert re.search(r"stolen money under freeze orders\s+\d+\.\d%", summary)
    assert re.search(r"money held\s+[\d,]+\.\d\d THB", summary), "the institution desk's executed acks count"
    assert re.search(r"report→executed\s+p50 \d+\.\d s", summary)
    assert re.search(r"suspensions\s+[1-9]\d* distinct", summary)
    assert re.search(r"victim warnings\s+[1-9]\d* numbers", summary)
    assert "FREEZE active" in result.stdout
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftovers.stdout == "", "the demo left a process running"


async def test_metrics_endpoint_shows_lag_throughput_latency_and_dead_letters(settings: Settings) -> None:
    port = free_port()
    metrics = Metrics(settings.consumer_group)
    metrics.serve(port)
    worker = InterceptionWorker(settings, settings.bootstrap_servers or "", metrics)
    await worker.start()
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=30)
        bank, reports = settings.topic_prefix + "bank-transactions", settings.topic_prefix + "victim-reports"
        paid = transaction("pay-m", account("KBANK", "v"), account("SCB", "m"), "500", now() - HOUR)
        await produce(
            settings.bootstrap_servers or "",
            [(bank, paid), (bank, b"not json"), (reports, report("R-m", now(), [paid]))],
        )
        await wait_consumed(metrics.registry, 3)
        lag_line = (
            f'kafka_consumergroup_lag{{consumergroup="{settings.consumer_group}",partition="0",topic="{bank}"}} 0.0'
        )
        body = ""
        for _ in range(100):  # the lag gauge refreshes once a second: poll the endpoint until it shows
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            )
            if lag_line in body:
                break
            await asyncio.sleep(0.1)
    finally:
        await worker.stop()
    assert lag_line in body
    assert f'interceptor_events_consumed_total{{topic="{bank}"}} 2.0' in body
    assert f'interceptor_dead_letters_total{{reason="malformed_json",topic="{bank}"}} 1.0' in body
    assert 'interceptor_actions_emitted_total{band="' in body
    assert "interceptor_report_to_first_action_seconds_count 1.0" in body
    assert "interceptor_batch_processing_seconds_count" in body

"""The whole flow in one place.

    victim-reports ─┐                   money trail ─> freeze book ───┐ action ┌─> freeze-actions[.<addressee>]
 bank-transactions ─┼─> decode ─┬────> (tracing)       (decisions)    ├─ book─>┼─> suspension-actions[.<addressee>]
    telecom-events ─┤           ├────> telecom correlation ───────────┤ signed └─> victim-warnings
       action-acks ─┘           ├────> action lifecycle ─ SLA timer ──┘ (escalated versions)
                                └─ bad input, unknown acks ─────────────────────> dead-letters

decode: schemas.decode · trace: processors.money_trail · freeze orders: processors.freeze_orders
· suspensions, takedowns, warnings: processors.telecom · acks and SLAs: processors.lifecycle
· versions, escalation and release of every action: processors.action_book
· batch loop, commit order, recovery: pipeline.worker · routing and signing: pipeline.publisher

The faust app owns the worker's lifecycle (signals, logging, graceful stop, data
dir); the high-rate inputs run in InterceptionWorker's batch loop inside it.
"""

from __future__ import annotations

import faust

from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.worker import InterceptionWorker


def create_app(settings: Settings, bootstrap: str) -> tuple[faust.App, InterceptionWorker]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.consumer_group}-lifecycle",
        broker=f"kafka://{bootstrap}",
        datadir=str(settings.data_dir),
        web_enabled=False,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
        topic_partitions=1,
        topic_replication_factor=settings.replication_factor,  # faust's own leader topic
    )
    metrics = Metrics(settings.consumer_group)
    worker = InterceptionWorker(settings, bootstrap, metrics)

    @app.task
    async def run_interception() -> None:
        if settings.metrics_port is not None:
            metrics.serve(settings.metrics_port)
        await app.add_runtime_dependency(worker)

    return app, worker

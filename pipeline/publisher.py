"""Where each result goes: shared topics, per-partner topics, dead letters; signed on the way out.

Every action, warning and dead letter goes to its shared topic (the war room's view, in full)
and to ``<topic>.<partner>``: the action's addressee, the warning's operator, each partner a
dead letter belongs to (``pipeline/partners.py``). Each partner reads only its own, and the
broker's ACLs can enforce that. A freeze action's copy hides other institutions' account
numbers, so it is signed on its own. Per-partner topics are created the first time a partner
gets a message, with the same replication factor and configs as the catalogue's topics
(``pipeline/broker.py`` ``new_topics``). Every message is encoded at most ``max_action_bytes``
long (``pipeline/encode.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from pipeline.broker import create_topics
from pipeline.encode import (
    encode_dead_letter,
    encode_freeze_action,
    encode_release_answer,
    encode_suspension_action,
    encode_victim_warning,
)
from pipeline.interception import BatchResult
from pipeline.kafka import KafkaConnection
from pipeline.keys import load_signer
from pipeline.partners import addressee_freeze_view, dead_letter_copies
from pipeline.settings import Settings
from pipeline.topics import (
    DEAD_LETTERS,
    FREEZE_ACTIONS,
    HELD_ACTIONS,
    RELEASE_ANSWERS,
    SUSPENSION_ACTIONS,
    VICTIM_WARNINGS,
    TopicSpec,
    addressee_spec,
)
from processors.freeze_orders import FreezeOrder
from processors.telecom import SuspensionOrder

Send = tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]  # topic, key, value (None: tombstone), headers

log = logging.getLogger(__name__)
SEND_ATTEMPTS = 5


class Publisher:
    def __init__(self, settings: Settings, kafka: KafkaConnection | str, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.kafka = kafka
        self.producer = producer
        self._signer = load_signer(settings)
        self._limits = settings.action_limits
        self._pseudonyms = settings.pseudonyms
        self.ends: dict[TopicPartition, int] = {}  # how far this publisher's own writes reach, per partition
        self._routed: set[str] = set()

    async def publish(self, result: BatchResult, now_ms: int) -> None:
        """Send everything the batch produced and wait until the broker has acknowledged all of it."""
        sends: list[Send] = []
        for rejected in result.rejected:
            record, rejection, limits = rejected.record, rejected.rejection, self._limits
            at = (record.topic, record.partition, record.offset)
            key, value = encode_dead_letter(*at, record.value, rejection, now_ms, limits)
            sends.append((self.settings.topic(DEAD_LETTERS), key, value, []))
            for partner, payload in dead_letter_copies(
                record.topic, record.value, self.settings.topic_prefix, self._pseudonyms
            ):
                routed = await self._ensure_routed(addressee_spec(DEAD_LETTERS, partner))
                sends.append((routed, *encode_dead_letter(*at, payload, rejection, now_ms, limits, partner), []))
        for action in result.actions:
            if isinstance(action, FreezeOrder):
                spec, (key, value) = FREEZE_ACTIONS, encode_freeze_action(action, self._signer, self._limits)
                _, copy = encode_freeze_action(action, self._signer, self._limits, self._addressee_view)
            else:
                spec, (key, value) = SUSPENSION_ACTIONS, encode_suspension_action(action, self._signer, self._limits)
                copy = value  # nothing in a suspension belongs to another partner (README, *Who sees what*)
            routed = await self._ensure_routed(addressee_spec(spec, action.addressee))
            sends += [(self.settings.topic(spec), key, value, []), (routed, key, copy, [])]
        for warning in result.warnings:
            key, value = encode_victim_warning(warning, self._signer, self._limits)
            routed = await self._ensure_routed(addressee_spec(VICTIM_WARNINGS, warning.operator))
            sends += [(self.settings.topic(VICTIM_WARNINGS), key, value, []), (routed, key, value, [])]
        for decision in result.answers:
            key, value = encode_release_answer(decision, now_ms, self._signer)
            routed = await self._ensure_routed(addressee_spec(RELEASE_ANSWERS, decision.request.requester))
            sends += [(self.settings.topic(RELEASE_ANSWERS), key, value, []), (routed, key, value, [])]
        # Held back by the circuit breaker: on the broker before the batch commits, so a crash loses none.
        for action in result.held:
            spec, _, value = self._encoded(action)
            sends.append(
                (self.settings.topic(HELD_ACTIONS), action.action_id.encode(), value, [("topic", spec.name.encode())])
            )
        for action_id in result.tombstones:
            sends.append((self.settings.topic(HELD_ACTIONS), action_id.encode(), None, []))
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                deliveries = [
                    await self.producer.send(topic, value, key=key, headers=headers or None)
                    for topic, key, value, headers in sends
                ]
                for written in await asyncio.gather(*deliveries):
                    tp = TopicPartition(written.topic, written.partition)
                    self.ends[tp] = max(self.ends.get(tp, 0), written.offset + 1)
                return
            except KafkaError as error:
                # Resending all of it is safe: actions are idempotent by action_id and version.
                if not getattr(error, "retriable", False) or attempt == SEND_ATTEMPTS:
                    raise
                log.warning("publishing failed (%s); attempt %d of %d", error, attempt, SEND_ATTEMPTS)
                await asyncio.sleep(0.2 * attempt)

    def _addressee_view(self, action: dict[str, Any]) -> dict[str, Any]:
        return addressee_freeze_view(action, self._pseudonyms)

    def _encoded(self, action: FreezeOrder | SuspensionOrder) -> tuple[TopicSpec, bytes, bytes]:
        if isinstance(action, FreezeOrder):
            return FREEZE_ACTIONS, *encode_freeze_action(action, self._signer, self._limits)
        return SUSPENSION_ACTIONS, *encode_suspension_action(action, self._signer, self._limits)

    async def _ensure_routed(self, spec: TopicSpec) -> str:
        """Create the per-partner topic the first time it is needed; returns its name."""
        topic = self.settings.topic(spec)
        if topic in self._routed:
            return topic
        await create_topics(self.kafka, [spec], self.settings.topic_prefix, self.settings.replication_factor)
        await self.producer.partitions_for(topic)  # a new topic has no leader for a moment
        self._routed.add(topic)
        return topic

"""Which worker owns each trail partition, and which keep warm copies of it: the trail role's assignor.

Kafka Streams' way, in small. Every worker tells the group's leader, when it joins, how far its
local copy of each trail partition reaches (the partitions it owned, and those it copied). The
leader then keeps each partition with the worker holding the freshest copy, as far as a balanced
share allows, gives the rest to the workers with most room, and names ``standby_replicas`` other
workers to keep a warm copy of each, preferring those that already hold one. A worker reads the
partitions of the bank feed with the same numbers as the trail partitions it owns (co-partitioning:
a feed keyed by txn_id meets its resolvers in process).

``place`` is the whole decision, a pure function; ``trail_assignor`` wraps it for aiokafka, whose
assignors are classes: each worker makes its own, bound to its store and its standby set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import msgspec
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

ASSIGNOR_NAME = "interceptor-trail"
T = TypeVar("T")

Copies = Mapping[int, int]  # trail partition -> how far into its changelog the worker's local copy reaches

_encode = msgspec.msgpack.Encoder().encode
_decode_copies = msgspec.msgpack.Decoder(dict[int, int]).decode
_decode_standby = msgspec.msgpack.Decoder(list[int]).decode


@dataclass(frozen=True)
class Placement:
    """One worker's share: the trail partitions it owns, and those it keeps a warm copy of."""

    active: tuple[int, ...]
    standby: tuple[int, ...]


def place(partitions: int, copies: Mapping[str, Copies], replicas: int) -> dict[str, Placement]:
    """Owners and standbys for ``partitions`` trail partitions among the workers in ``copies``.

    Shares differ by at most one partition. A partition stays with the worker whose copy reaches
    furthest (so the adoption reads the shortest tail) unless that worker's share is full; the
    larger shares go to the workers holding the most such copies, so keeping beats balancing only
    where balance allows it. Each partition gets ``replicas`` standbys (at most the other workers),
    those holding a copy first, then the least burdened; ties go by member id, so every leader
    decides the same.
    """
    members = sorted(copies)
    if not members:
        return {}
    reach = {member: {p: offset for p, offset in copies[member].items() if 0 <= p < partitions} for member in members}

    def freshest(partition: int, among: Iterable[str]) -> list[str]:
        holding = [m for m in among if partition in reach[m]]
        return sorted(holding, key=lambda m: (-reach[m][partition], m))

    best = Counter(ranked[0] for p in range(partitions) if (ranked := freshest(p, members)))
    base, extra = divmod(partitions, len(members))
    by_claim = sorted(members, key=lambda m: (-best[m], m))
    share = {member: base + (1 if rank < extra else 0) for rank, member in enumerate(by_claim)}

    owner: dict[int, str] = {}
    load: Counter[str] = Counter()
    for partition in range(partitions):  # kept where the freshest copy with room is
        for member in freshest(partition, members):
            if load[member] < share[member]:
                owner[partition] = member
                load[member] += 1
                break
    for partition in range(partitions):  # the rest: most room first
        if partition not in owner:
            member = min(members, key=lambda m: (load[m] - share[m], m))
            owner[partition] = member
            load[member] += 1

    standby: dict[str, list[int]] = {member: [] for member in members}
    for partition in range(partitions):
        others = [m for m in members if m != owner[partition]]
        ranked = sorted(others, key=lambda m: (partition not in reach[m], len(standby[m]), m))
        for member in ranked[:replicas]:
            standby[member].append(partition)
    return {
        member: Placement(tuple(p for p in range(partitions) if owner[p] == member), tuple(standby[member]))
        for member in members
    }


def trail_assignor(
    trail_topic: str,
    feed_topic: str,
    replicas: int,
    copies: Callable[[], Copies],
    on_standby: Callable[[frozenset[int], frozenset[int]], None],
) -> type[AbstractPartitionAssignor]:
    """An aiokafka assignor for the trail role's consumer: ``copies`` reports the local store's copies when the
    worker joins; ``on_standby(active, standby)`` hears this worker's trail partitions when an assignment lands."""

    class TrailAssignor(AbstractPartitionAssignor):
        name = ASSIGNOR_NAME
        version = 0

        @classmethod
        def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
            return ConsumerProtocolMemberMetadata(cls.version, sorted(topics), _encode(dict(copies())))

        @classmethod
        def assign(
            cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
        ) -> dict[str, ConsumerProtocolMemberAssignment]:
            trail_partitions = len(cluster.partitions_for_topic(trail_topic) or ())
            copies_of = {member: _read(_decode_copies, meta.user_data, {}) for member, meta in members.items()}
            placements = place(trail_partitions, copies_of, replicas)
            topics: dict[str, dict[str, list[int]]] = {member: {} for member in members}
            for topic in sorted({t for meta in members.values() for t in meta.subscription}):
                subscribed = sorted(m for m, meta in members.items() if topic in meta.subscription)
                found = sorted(cluster.partitions_for_topic(topic) or ())
                if topic == trail_topic or (topic == feed_topic and len(found) == trail_partitions):
                    for member in subscribed:  # the feed co-partitioned: the same numbers as the trail's
                        topics[member][topic] = list(placements[member].active)
                else:
                    for member, share in zip(subscribed, _ranges(found, len(subscribed)), strict=True):
                        topics[member][topic] = share
            return {
                member: ConsumerProtocolMemberAssignment(
                    cls.version,
                    sorted((topic, partitions) for topic, partitions in topics[member].items() if partitions),
                    _encode(list(placements[member].standby)) if member in placements else b"",
                )
                for member in members
            }

        @classmethod
        def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
            active = frozenset(p for topic, partitions in assignment.assignment if topic == trail_topic
                               for p in partitions)  # fmt: skip
            on_standby(active, frozenset(_read(_decode_standby, assignment.user_data, [])))

    return TrailAssignor


def _read(decode: Callable[[bytes], T], user_data: bytes, nothing: T) -> T:
    """What a member or the leader says; ``nothing`` if it is said in a form this release cannot read."""
    try:
        return decode(user_data) if user_data else nothing
    except msgspec.DecodeError:
        return nothing


def _ranges(partitions: list[int], members: int) -> list[list[int]]:
    """Contiguous shares, the larger first: the range assignor's split of one topic."""
    base, extra = divmod(len(partitions), members)
    shares, start = [], 0
    for rank in range(members):
        size = base + (1 if rank < extra else 0)
        shares.append(partitions[start : start + size])
        start += size
    return shares

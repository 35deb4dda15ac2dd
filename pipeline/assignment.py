"""Give every input partition to one member of the consumer group; the others wait as cold standbys.

The money trail crosses partitions (a report on one, the mule's transfers on any
other), so one worker must see them all. The member that already holds the
partitions keeps them when a standby joins (it says so in its join metadata), so
a joining standby never forces the active worker to rebuild; a standby takes over
within a session timeout when the active one leaves.

One instance per consumer: it remembers whether its own consumer holds partitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

ACTIVE = b"active"


class SingleActiveAssignor(AbstractPartitionAssignor):
    name = "interceptor-single-active"
    version = 0

    def __init__(self) -> None:
        self.holds_partitions = False

    def assign(  # type: ignore[override]
        self, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = sorted({topic for metadata in members.values() for topic in metadata.subscription})
        incumbents = sorted(member for member, metadata in members.items() if metadata.user_data == ACTIVE)
        active = incumbents[0] if incumbents else min(members)
        everything = [(topic, sorted(cluster.partitions_for_topic(topic) or ())) for topic in topics]
        return {
            member: ConsumerProtocolMemberAssignment(self.version, everything if member == active else [], b"")
            for member in members
        }

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:  # type: ignore[override]
        return ConsumerProtocolMemberMetadata(self.version, list(topics), ACTIVE if self.holds_partitions else b"")

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:  # type: ignore[override]
        self.holds_partitions = any(partitions for _, partitions in assignment.assignment)

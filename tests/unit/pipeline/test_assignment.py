"""The whole trail on one worker: every partition to one member, and the incumbent keeps them."""

from __future__ import annotations

from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

from pipeline.assignment import SingleActiveAssignor

TOPICS = {"bank-transactions": {0, 1, 2}, "victim-reports": {0, 1, 2}}


class Cluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return TOPICS[topic]


def member(assignor: SingleActiveAssignor) -> ConsumerProtocolMemberMetadata:
    return assignor.metadata(sorted(TOPICS))


def held(assignment: ConsumerProtocolMemberAssignment) -> int:
    return sum(len(partitions) for _, partitions in assignment.assignment)


def test_one_member_gets_every_partition_and_the_others_none() -> None:
    a, b = SingleActiveAssignor(), SingleActiveAssignor()
    result = a.assign(Cluster(), {"member-a": member(a), "member-b": member(b)})  # type: ignore[arg-type]
    assert sorted(held(x) for x in result.values()) == [0, 6]


def test_the_member_holding_the_partitions_keeps_them_when_a_standby_joins() -> None:
    incumbent, newcomer = SingleActiveAssignor(), SingleActiveAssignor()
    first = incumbent.assign(Cluster(), {"z-incumbent": member(incumbent)})  # type: ignore[arg-type]
    incumbent.on_assignment(first["z-incumbent"])
    # The newcomer's id sorts first, yet the incumbent keeps everything: no rebuild for a standby joining.
    second = incumbent.assign(Cluster(), {"a-newcomer": member(newcomer), "z-incumbent": member(incumbent)})  # type: ignore[arg-type]
    assert held(second["z-incumbent"]) == 6 and held(second["a-newcomer"]) == 0
    newcomer.on_assignment(second["a-newcomer"])
    assert not newcomer.holds_partitions and incumbent.holds_partitions

"""The trail role's assignor: owners kept where the freshest copy is, shares balanced, standbys named."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from hypothesis import given
from hypothesis import strategies as st

from pipeline.trail_assignment import place, trail_assignor

TRAIL, FEED = "p.trail-messages", "p.bank-transactions"


def owners(placements: dict[str, object]) -> dict[int, str]:
    return {p: member for member, placement in placements.items() for p in placement.active}  # type: ignore[attr-defined]


def test_nothing_held_the_partitions_are_shared_out_evenly() -> None:
    placed = place(8, {"a": {}, "b": {}, "c": {}}, replicas=1)

    assert sorted(len(p.active) for p in placed.values()) == [2, 3, 3]
    assert sorted(owners(placed)) == list(range(8))


def test_a_partition_stays_with_the_worker_whose_copy_reaches_furthest() -> None:
    # b owned 2 and 3 until the rebalance; a copied them, but less far.
    placed = place(4, {"a": {0: 50, 1: 50, 2: 10, 3: 10}, "b": {2: 40, 3: 40}}, replicas=1)

    assert placed["a"].active == (0, 1)
    assert placed["b"].active == (2, 3)


def test_a_departed_workers_partitions_go_to_those_that_copied_them() -> None:
    # c is gone; a copied 4 and 5 from it, b copied 6 and 7.
    held = {"a": {0: 9, 1: 9, 2: 9, 4: 7, 5: 7}, "b": {3: 9, 6: 7, 7: 7}}
    placed = place(8, held, replicas=1)

    assert placed["a"].active == (0, 1, 2, 4)
    assert placed["b"].active == (3, 5, 6, 7)  # 5 to b: a's share is full, and balance comes first


def test_a_new_worker_takes_a_share_even_though_it_holds_nothing() -> None:
    placed = place(4, {"old": {0: 5, 1: 5, 2: 5, 3: 5}, "new": {}}, replicas=1)

    assert placed["old"].active == (0, 1)
    assert placed["new"].active == (2, 3)
    assert placed["new"].standby == (0, 1)  # it copies what it may take over
    assert placed["old"].standby == (2, 3)  # the old worker's copies of what it gave away stay useful


@given(
    partitions=st.integers(1, 12),
    members=st.integers(1, 5),
    replicas=st.integers(0, 4),
    data=st.data(),
)
def test_every_partition_has_one_owner_and_its_standbys_elsewhere(
    partitions: int, members: int, replicas: int, data: st.DataObject
) -> None:
    names = [f"m{n}" for n in range(members)]
    copies = {
        name: data.draw(st.dictionaries(st.integers(-1, partitions + 1), st.integers(0, 100), max_size=partitions))
        for name in names
    }
    placed = place(partitions, copies, replicas)

    shares = [len(p.active) for p in placed.values()]
    assert sorted(owners(placed)) == list(range(partitions))
    assert sum(shares) == partitions and max(shares) - min(shares) <= 1
    standbys = Counter(p for placement in placed.values() for p in placement.standby)
    assert all(standbys[p] == min(replicas, members - 1) for p in range(partitions))
    assert all(not set(p.active) & set(p.standby) for p in placed.values())
    assert place(partitions, dict(reversed(copies.items())), replicas) == placed  # every leader decides the same


class Cluster:
    """The two facts of the cluster's metadata an assignor reads."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.partitions[topic])) if topic in self.partitions else None


@pytest.mark.parametrize("feed_partitions", [4, 3])
def test_the_assignor_gives_the_feed_the_trails_numbers_when_it_can_and_tells_each_worker_its_standbys(
    feed_partitions: int,
) -> None:
    heard: dict[str, tuple[frozenset[int], frozenset[int]]] = {}
    joined = {
        "a": trail_assignor(TRAIL, FEED, 1, lambda: {0: 5, 1: 5}, lambda *got: heard.__setitem__("a", got)),
        "b": trail_assignor(TRAIL, FEED, 1, lambda: {2: 5, 3: 5}, lambda *got: heard.__setitem__("b", got)),
    }
    metadata = {name: assignor.metadata([TRAIL, FEED]) for name, assignor in joined.items()}
    # Encoded and decoded as the broker passes them between members.
    members = {name: ConsumerProtocolMemberMetadata.decode(meta.encode()) for name, meta in metadata.items()}

    assignments = joined["a"].assign(Cluster({TRAIL: 4, FEED: feed_partitions}), members)  # type: ignore[arg-type]
    for name, assignment in assignments.items():
        joined[name].on_assignment(assignment)

    got = {name: dict(assignment.assignment) for name, assignment in assignments.items()}
    assert got["a"][TRAIL] == [0, 1] and got["b"][TRAIL] == [2, 3]
    if feed_partitions == 4:
        assert got["a"][FEED] == [0, 1] and got["b"][FEED] == [2, 3]
    else:  # not co-partitioned: a range split
        assert got["a"][FEED] == [0, 1] and got["b"][FEED] == [2]
    assert heard == {"a": (frozenset({0, 1}), frozenset({2, 3})), "b": (frozenset({2, 3}), frozenset({0, 1}))}


def test_a_member_saying_what_it_holds_in_another_form_is_taken_as_holding_nothing() -> None:
    assignor = trail_assignor(TRAIL, FEED, 1, dict, lambda active, standby: None)
    members = {
        "a": ConsumerProtocolMemberMetadata(0, [TRAIL], msgspec.msgpack.encode({"0": "x"})),
        "b": ConsumerProtocolMemberMetadata(0, [TRAIL], b"\xc1"),  # not msgpack at all
    }

    assignments = assignor.assign(Cluster({TRAIL: 2}), members)  # type: ignore[arg-type]

    assert {name: dict(a.assignment)[TRAIL] for name, a in assignments.items()} == {"a": [0], "b": [1]}

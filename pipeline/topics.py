"""The topic catalogue: every topic, its key, partitions, retention and schema, in one place.

Topic creation, JSON Schema export and the README's topic table are all generated from it.
Some output topics also have one copy per partner (``<name>.<partner>``): each institution or
operator reads only its own, and the broker's ACLs can enforce that (README, *Who sees what*).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel

from processors.records import partner_id
from schemas.actions import DeadLetter, FreezeAction, ReleaseAnswer, SuspensionAction, VictimWarning
from schemas.events import ActionAck, BankTransaction, ReleaseRequest, TelecomEvent, VictimReport

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class PartnerCopies:
    """A topic that also goes to ``<name>.<partner>``: who the partner is, and what its copy carries."""

    placeholder: str  # the README's name for the partner: addressee, operator, partner
    carries: str


@dataclass(frozen=True)
class TopicSpec:
    name: str
    direction: Literal["in", "out", "internal"]
    key: str
    partitions: int
    retention_ms: int
    model: type[BaseModel] | None  # None: internal, not part of the wire contract
    description: str
    compacted: bool = False
    partner_copies: PartnerCopies | None = None  # also routed to `<name>.<partner>`
    per_trail_partition: bool = False  # one partition per trail partition: created with `trail_partitions` of them

    def config(self, replication_factor: int) -> dict[str, str]:
        """The topic configs to create it with on a cluster that keeps ``replication_factor`` copies.

        Replicated output topics also get ``min.insync.replicas`` = min(2, replication_factor).
        The worker produces with ``acks=all`` and commits its input offsets once the broker has
        acknowledged everything a batch produced (README, *Delivery, restarts and scaling*). But
        ``acks=all`` waits only for the replicas in sync at that moment, which can be the leader alone.
        Without a floor, losing that leader loses actions that the committed offsets say were sent.
        With the floor, the broker refuses the write instead: the worker retries, and commits nothing
        until it succeeds. Input topics are written by partners, whose producers choose their own
        guarantees. With a replication factor of 2, one broker down stops the output topics.
        """
        config = {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "compact" if self.compacted else "delete",
        }
        if self.direction == "out" and replication_factor > 1:
            config["min.insync.replicas"] = str(min(2, replication_factor))
        return config


VICTIM_REPORTS = TopicSpec(
    "victim-reports",
    "in",
    "any (ignored)",
    3,
    90 * DAY_MS,
    VictimReport,
    "a victim's report: who they paid, how much, when",
)
BANK_TRANSACTIONS = TopicSpec(
    "bank-transactions",
    "in",
    "`txn_id` advised (any works)",
    3,
    14 * DAY_MS,
    BankTransaction,
    "executed transfers from partner banks and wallets",
)
FREEZE_ACTIONS = TopicSpec(
    "freeze-actions",
    "out",
    "action_id",
    3,
    30 * DAY_MS,
    FreezeAction,
    "versioned hold orders; keep the highest version per action_id",
    compacted=True,
    partner_copies=PartnerCopies(
        "addressee",
        "the institution's own actions; other institutions' account numbers pseudonymised (see *Who sees what*)",
    ),
)
DEAD_LETTERS = TopicSpec(
    "dead-letters",
    "out",
    "source topic",
    1,
    30 * DAY_MS,
    DeadLetter,
    "operator-only: every input we could not use, with the reason and the original bytes",
    partner_copies=PartnerCopies(
        "partner",
        "the partner's own rejected input: contract fields only, others' account numbers pseudonymised",
    ),
)

TELECOM_EVENTS = TopicSpec(
    "telecom-events",
    "in",
    "any (ignored)",
    3,
    35 * DAY_MS,
    TelecomEvent,
    "calls, messages, SIM registrations and swaps, data sessions from operators",
)
ACTION_ACKS = TopicSpec(
    "action-acks",
    "in",
    "any (ignored)",
    1,
    90 * DAY_MS,
    ActionAck,
    "institutions' answers: executed, partial, rejected, not_found; accepted only if signed by the addressee",
    partner_copies=PartnerCopies(
        "institution", "one institution's acks: only it may write here (broker ACLs), so they need no signature"
    ),
)
SUSPENSION_ACTIONS = TopicSpec(
    "suspension-actions",
    "out",
    "target",
    3,
    30 * DAY_MS,
    SuspensionAction,
    "versioned suspensions of numbers, handsets and IPs, and page takedowns",
    compacted=True,
    partner_copies=PartnerCopies("addressee", "the operator's or platform's own suspensions and takedowns"),
)
VICTIM_WARNINGS = TopicSpec(
    "victim-warnings",
    "out",
    "warned msisdn",
    1,
    30 * DAY_MS,
    VictimWarning,
    "operator-only: numbers a reported scammer contacted: warn them before they pay",
    compacted=True,
    partner_copies=PartnerCopies("operator", "the operator's own warnings: the numbers it must warn"),
)
RELEASE_REQUESTS = TopicSpec(
    "release-requests",
    "in",
    "any (ignored)",
    1,
    90 * DAY_MS,
    ReleaseRequest,
    "requests to lift an action, signed with the requester's registered key (or on its own topic)",
    partner_copies=PartnerCopies(
        "requester",
        "one topic per requester (`release_requesters`), which broker ACLs restrict to it: who may write there is "
        "who asks (see *Release and appeal*)",
    ),
)
RELEASE_ANSWERS = TopicSpec(
    "release-answers",
    "out",
    "request_id",
    1,
    90 * DAY_MS,
    ReleaseAnswer,
    "every release request's decision: granted with the released version, or refused and why",
    compacted=True,
    partner_copies=PartnerCopies("requester", "the requester's own answers"),
)

TRAIL_CHANGELOG = TopicSpec(
    "trail-changelog",
    "internal",
    "consumer group",
    1,
    14 * DAY_MS,
    None,
    "the trail store's rows, checkpoint by checkpoint: restores a lost disk without the input history",
)
TRAIL_MESSAGES = TopicSpec(
    "trail-messages",
    "internal",
    "trail partition",
    8,
    14 * DAY_MS,
    None,
    "with `trail_partitions` > 0: what trail partitions tell each other (transfers, claims, tainted content), "
    "many to a message; a partition's owner reads its own",
    per_trail_partition=True,
)
TRAIL_HOLDINGS = TopicSpec(
    "trail-holdings",
    "internal",
    "trail partition",
    8,
    14 * DAY_MS,
    None,
    "with `trail_partitions` > 0: each trail partition's changed holdings (traced money held by an account) "
    "and its accounts first seen in the bank feed (for payment-proxy links), for the worker deciding the actions",
    per_trail_partition=True,
)
TRAIL_PARTITION_CHANGELOG = TopicSpec(
    "trail-partition-changelog",
    "internal",
    "trail partition",
    8,
    14 * DAY_MS,
    None,
    "with `trail_partitions` > 0: each trail partition's store rows, checkpoint by checkpoint; whoever adopts a "
    "partition restores it from here",
    per_trail_partition=True,
)
HELD_ACTIONS = TopicSpec(
    "held-actions",
    "internal",
    "action_id",
    1,
    30 * DAY_MS,
    None,
    "action versions the circuit breaker holds back, until they go out (then a tombstone): a restart loses none",
    compacted=True,
)

TOPICS: tuple[TopicSpec, ...] = (
    VICTIM_REPORTS,
    BANK_TRANSACTIONS,
    TELECOM_EVENTS,
    ACTION_ACKS,
    RELEASE_REQUESTS,
    FREEZE_ACTIONS,
    SUSPENSION_ACTIONS,
    VICTIM_WARNINGS,
    RELEASE_ANSWERS,
    DEAD_LETTERS,
    TRAIL_CHANGELOG,
    TRAIL_MESSAGES,
    TRAIL_HOLDINGS,
    TRAIL_PARTITION_CHANGELOG,
    HELD_ACTIONS,
)
INPUT_TOPICS = tuple(t for t in TOPICS if t.direction == "in")


def catalogue(trail_partitions: int) -> tuple[TopicSpec, ...]:
    """The topics to create: those of the trail's partitions with ``trail_partitions`` partitions each, or none of
    them when one worker runs the whole trail (0)."""
    if not trail_partitions:
        return tuple(t for t in TOPICS if not t.per_trail_partition)
    return tuple(replace(t, partitions=trail_partitions) if t.per_trail_partition else t for t in TOPICS)


def input_topic_pattern(topic_prefix: str, also: Iterable[str] = (), without: Iterable[TopicSpec] = ()) -> str:
    """The worker's subscription: every input topic but those ``without``, every institution's own
    ``action-acks.<institution>`` (whoever the institution: its acks need no registration), and the topics in
    ``also``."""
    acks = topic_prefix + ACTION_ACKS.name
    left_out = set(without)
    exact = [topic_prefix + t.name for t in INPUT_TOPICS if t is not ACTION_ACKS and t not in left_out] + list(also)
    names = [re.escape(name) for name in exact] + [re.escape(acks) + r"(\.[a-z0-9_-]+)?"]
    return "^(" + "|".join(names) + ")$"


def wire_models() -> dict[str, type[BaseModel]]:
    """The partner-facing topics and their contract (internal topics have none)."""
    return {t.name: t.model for t in TOPICS if t.model is not None}


partner_suffix = partner_id  # one spelling of partner names, shared with the processors (release requests)


def addressee_topic(spec: TopicSpec, addressee: str) -> str:
    """``freeze-actions.<addressee>``, by ``partner_suffix``; ``<name>.unknown`` for a name with no safe character."""
    return f"{spec.name}.{partner_suffix(addressee) or 'unknown'}"


def addressee_spec(spec: TopicSpec, addressee: str) -> TopicSpec:
    """A partner's copy of a topic with ``partner_copies``: same key, partitions and configs, its own name."""
    return replace(spec, name=addressee_topic(spec, addressee), partner_copies=None)


def topic_table_markdown() -> str:
    rows = [
        "| topic | direction | key | partitions | retention | schema | what it carries |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for topic in TOPICS:
        retention = f"{topic.retention_ms // DAY_MS} d" + (", compacted" if topic.compacted else "")
        internal = (
            "internal, msgpack"
            if topic in (TRAIL_CHANGELOG, TRAIL_PARTITION_CHANGELOG, TRAIL_MESSAGES, TRAIL_HOLDINGS)
            else "internal, the action as published"
        )
        partitions = "`trail_partitions`" if topic.per_trail_partition else str(topic.partitions)
        schema = internal if topic.model is None else f"`schemas/json/{topic.name}.schema.json`"
        rows.append(
            f"| `{topic.name}` | {topic.direction} | {topic.key} | {partitions} | {retention} "
            f"| {schema} | {topic.description} |"
        )
        copies = topic.partner_copies
        if copies is not None:
            rows.append(
                f"| `{topic.name}.<{copies.placeholder}>` | {topic.direction} | as above | {topic.partitions} "
                f"| {retention} | as above | {copies.carries} |"
            )
    return "\n".join(rows) + "\n"

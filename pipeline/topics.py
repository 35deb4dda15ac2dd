"""The topic catalogue: every topic, its key, partitions, retention and schema, in one place.

Topic creation, JSON Schema export and the README's topic table are all generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from schemas.actions import DeadLetter, FreezeAction
from schemas.events import BankTransaction, VictimReport

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    direction: Literal["in", "out"]
    key: str
    partitions: int
    retention_ms: int
    model: type[BaseModel]
    description: str
    compacted: bool = False

    @property
    def config(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "compact" if self.compacted else "delete",
        }


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
    "any (ignored)",
    3,
    14 * DAY_MS,
    BankTransaction,
    "executed transfers from partner banks and wallets",
)
FREEZE_ACTIONS = TopicSpec(
    "freeze-actions",
    "out",
    "target `kind:institution:account`",
    3,
    30 * DAY_MS,
    FreezeAction,
    "versioned hold orders; keep the highest version per action_id",
    compacted=True,
)
DEAD_LETTERS = TopicSpec(
    "dead-letters",
    "out",
    "source topic",
    1,
    30 * DAY_MS,
    DeadLetter,
    "input we could not use, with the reason and the original bytes",
)

TOPICS: tuple[TopicSpec, ...] = (VICTIM_REPORTS, BANK_TRANSACTIONS, FREEZE_ACTIONS, DEAD_LETTERS)
INPUT_TOPICS = tuple(t for t in TOPICS if t.direction == "in")


def topic_table_markdown() -> str:
    rows = [
        "| topic | direction | key | partitions | retention | schema | what it carries |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for topic in TOPICS:
        retention = f"{topic.retention_ms // DAY_MS} d" + (", compacted" if topic.compacted else "")
        rows.append(
            f"| `{topic.name}` | {topic.direction} | {topic.key} | {topic.partitions} | {retention} "
            f"| `schemas/json/{topic.name}.schema.json` | {topic.description} |"
        )
    return "\n".join(rows) + "\n"

"""Versioned, idempotent actions: a new version only when what the addressee would do changes.

Every action kind (freeze, suspension, warning) keeps one of these books. Consumers keep
the highest version per ``action_id``; redelivered or replayed input finds the same
fingerprint and issues nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

Order = TypeVar("Order")


@dataclass(slots=True)
class Issued(Generic[Order]):
    version: int
    fingerprint: Hashable
    order: Order | None  # None for versions restored from the topic before they are rebuilt
    escalation: int = 0


class VersionBook(Generic[Order]):
    def __init__(self) -> None:
        self._issued: dict[str, Issued[Order]] = {}

    def __len__(self) -> int:
        return len(self._issued)

    def __iter__(self) -> Iterator[tuple[str, Issued[Order]]]:
        return iter(self._issued.items())

    def get(self, action_id: str) -> Issued[Order] | None:
        return self._issued.get(action_id)

    def restore(self, action_id: str, version: int, fingerprint: Hashable, escalation: int = 0) -> None:
        """Remember a version already on the topic (start-up recovery); the highest version wins."""
        known = self._issued.get(action_id)
        if known is None or known.version < version:
            self._issued[action_id] = Issued(version, fingerprint, None, escalation)

    def next_version(self, action_id: str, fingerprint: Hashable) -> int | None:
        """The version to issue for this content, or None if it is what was issued last."""
        known = self._issued.get(action_id)
        if known is not None and known.fingerprint == fingerprint:
            return None
        return 1 if known is None else known.version + 1

    def record(self, action_id: str, version: int, fingerprint: Hashable, order: Order) -> None:
        known = self._issued.get(action_id)
        escalation = known.escalation if known is not None else 0
        self._issued[action_id] = Issued(version, fingerprint, order, escalation)

    def adopt(self, action_id: str, fingerprint: Hashable, order: Order) -> bool:
        """Attach a rebuilt order to a restored version with the same content; True if it matched."""
        known = self._issued.get(action_id)
        if known is None or known.fingerprint != fingerprint:
            return False
        known.order = order
        return True

    def escalation(self, action_id: str) -> int:
        known = self._issued.get(action_id)
        return known.escalation if known is not None else 0

    def raise_escalation(self, action_id: str) -> int:
        known = self._issued[action_id]
        known.escalation += 1
        return known.escalation


def ids_digest(*lists: tuple[str, ...]) -> str:
    """``sha256:<hex>`` of whole lists of ids, so an action listing only part of them still pins all of them.

    Every list and every id is length-prefixed: no two different sequences of lists share a digest.
    """
    digest = hashlib.sha256()
    for ids in lists:
        digest.update(f"{len(ids)}\x00".encode())
        for part in ids:
            encoded = part.encode()
            digest.update(f"{len(encoded)}:".encode())
            digest.update(encoded)
    return "sha256:" + digest.hexdigest()


ESCALATION_STEP = 10  # priority points added each time an action misses its SLA


class Escalatable(Protocol):
    @property
    def base_priority(self) -> int: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...


E = TypeVar("E", bound=Escalatable)


def escalated(order: E, level: int, now_ms: int) -> E:
    """The same order re-issued after missing its SLA ``level`` times: higher priority, one escalation reason."""
    return replace(
        order,  # type: ignore[type-var]
        escalation=level,
        priority=escalated_priority(order.base_priority, level),
        reasons=(*without_escalation(order.reasons), escalation_reason(level)),
        issued_at_ms=now_ms,
    )


def escalated_priority(base_priority: int, level: int) -> int:
    return min(100, base_priority + ESCALATION_STEP * level)


def escalation_reason(level: int) -> str:
    return f"escalated: not executed within its SLA ({level} time(s))"


def without_escalation(reasons: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(r for r in reasons if not r.startswith("escalated:"))

"""At most so many action versions per addressee per window; the rest wait, and nothing is dropped.

A flood of orders (a fan-in case, a bad re-trace, a burst of escalations) must not bury one
institution's desk. ``CircuitBreaker.admit`` takes the versions the action book just issued and
sends each addressee at most ``limit`` within any ``window_ms``; the others wait in a queue per
addressee. ``drain`` lets them out as the window allows, highest priority first (then the oldest
issued, then by action id). A newer version of a waiting action replaces the older one: consumers
keep only the highest version anyway. While an addressee has actions waiting its circuit is open
(``open_circuits``), which the worker charts as an alert metric.

Only the waiting set matters after a crash, so the worker writes each action that starts waiting
to an internal topic before it commits the batch, and a tombstone once it went out
(``newly_held``, ``unheld``); a restart reads the topic back into ``hold``. The window's count of
what was recently sent is not kept: after a restart an addressee may get up to one more window's
worth.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class Throttled(Protocol):
    @property
    def action_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def issued_at_ms(self) -> int: ...
    @property
    def addressee(self) -> str: ...


T = TypeVar("T", bound=Throttled)


@dataclass(slots=True)
class Admission(Generic[T]):
    sent: list[T] = field(default_factory=list)  # go out now, in this order
    newly_held: list[T] = field(default_factory=list)  # started waiting: persist them before committing
    unheld: list[str] = field(default_factory=list)  # action ids that waited and no longer do: tombstone them


class CircuitBreaker(Generic[T]):
    """Per-addressee rate limit on action versions; ``limit`` 0 turns it off."""

    def __init__(self, limit: int, window_ms: int) -> None:
        if limit < 0 or window_ms <= 0:
            raise ValueError("the circuit breaker needs a limit >= 0 and a positive window")
        self.limit = limit
        self.window_ms = window_ms
        self._sent: dict[str, deque[int]] = {}  # addressee -> send times within the window
        self._waiting: dict[str, dict[str, T]] = {}  # addressee -> action_id -> the latest version waiting
        self._stored: set[str] = set()  # waiting action ids with a record on the held-actions topic

    def admit(self, actions: Iterable[T], now_ms: int) -> Admission[T]:
        """What of ``actions`` (and of what already waits) goes out now; the rest waits."""
        if not self.limit:
            return Admission(sent=list(actions))
        arrived: dict[str, T] = {}
        for action in actions:
            self._waiting.setdefault(action.addressee, {})[action.action_id] = action
            arrived[action.action_id] = action
        admission = self._release_all(sorted({a.addressee for a in arrived.values()}), now_ms)
        sent = {a.action_id for a in admission.sent}
        admission.newly_held.extend(a for action_id, a in sorted(arrived.items()) if action_id not in sent)
        self._stored.update(a.action_id for a in admission.newly_held)
        return admission

    def drain(self, now_ms: int) -> Admission[T]:
        """The waiting actions the window now allows, highest priority first."""
        return self._release_all(sorted(self._waiting), now_ms)

    def _release_all(self, addressees: list[str], now_ms: int) -> Admission[T]:
        admission: Admission[T] = Admission()
        for addressee in addressees:
            for action in self._release(addressee, now_ms):
                admission.sent.append(action)
                if action.action_id in self._stored:
                    self._stored.discard(action.action_id)
                    admission.unheld.append(action.action_id)
        return admission

    def hold(self, action: T) -> None:
        """Start-up recovery: an action that was waiting when the worker stopped."""
        queue = self._waiting.setdefault(action.addressee, {})
        known = queue.get(action.action_id)
        if known is None or known.version < action.version:
            queue[action.action_id] = action
        self._stored.add(action.action_id)

    def waiting(self, action_id: str) -> T | None:
        return next((q[action_id] for q in self._waiting.values() if action_id in q), None)

    def forget(self, action_ids: Iterable[str]) -> list[str]:
        """Drop waiting actions the action book forgot (expired before they could go out); their ids."""
        gone = set(action_ids)
        dropped = []
        for addressee, queue in list(self._waiting.items()):
            for action_id in [a for a in queue if a in gone]:
                del queue[action_id]
                self._stored.discard(action_id)
                dropped.append(action_id)
            if not queue:
                del self._waiting[addressee]
        return dropped

    def open_circuits(self) -> dict[str, int]:
        """Addressees with actions waiting, and how many."""
        return {addressee: len(queue) for addressee, queue in self._waiting.items() if queue}

    def _release(self, addressee: str, now_ms: int) -> list[T]:
        queue = self._waiting.get(addressee)
        if not queue:
            self._waiting.pop(addressee, None)
            return []
        times = self._sent.setdefault(addressee, deque())
        while times and times[0] <= now_ms - self.window_ms:
            times.popleft()
        room = self.limit - len(times)
        if room <= 0:
            return []
        chosen = heapq.nsmallest(room, queue.values(), key=lambda a: (-a.priority, a.issued_at_ms, a.action_id))
        for action in chosen:
            del queue[action.action_id]
            times.append(now_ms)
        if not queue:
            del self._waiting[addressee]
        return chosen

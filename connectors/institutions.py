"""Banks, wallets, operators and platforms answering our actions, simulated for ``interceptor demo``.

An action is only worth what the institution does with it. Real ones answer some
seconds later, hold all the money or only what is left, cannot find the account,
or never answer at all, which is what SLA escalation is for. ``InstitutionDesk``
plays them: the demo hands it every freeze or suspension action it sees and
publishes the acks it returns on ``action-acks``, each signed with the answering
institution's own Ed25519 key (``registry`` gives the worker their public keys).
Like the scenario feed it is a pure function of the seed and the actions taken:
no broker and no clock reads (Ed25519 signatures are deterministic).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.synthetic_feed import FeedEvent, FeedSettingsError
from pipeline.topics import ACTION_ACKS
from schemas.fields import format_minor_units, to_minor_units
from schemas.signing import Ed25519Signer

JsonObject = dict[str, Any]

NOT_FOUND_SHARE = 0.04
PARTIAL_SHARE = 0.12  # freeze actions only: the account holds less than the order asks for


class InstitutionDesk:
    """Every addressee's back office: takes action versions, answers the newest one after a delay."""

    def __init__(
        self, seed: int, ack_delay_s: tuple[float, float] = (1.0, 6.0), unresponsive_share: float = 0.15
    ) -> None:
        low, high = ack_delay_s
        if not 0 <= low <= high or not math.isfinite(high):
            raise FeedSettingsError(f"ack_delay_s must be (low, high) seconds with 0 <= low <= high, got {ack_delay_s}")
        if not 0 <= unresponsive_share <= 1:
            raise FeedSettingsError(f"unresponsive_share must be 0..1, got {unresponsive_share}")
        self.seed = seed
        self.ack_delay_s = ack_delay_s
        self.unresponsive_share = unresponsive_share
        self._newest: dict[str, int] = {}  # the highest version taken per action_id
        # Answers not yet due: (due_ms, action_id, version, ack); superseded ones are skipped when due.
        self._queue: list[tuple[int, str, int, JsonObject]] = []

    def signer(self, institution: str) -> Ed25519Signer:
        """The institution's own ack key, derived from the seed: the same for every run with this seed."""
        seed = hashlib.blake2b(f"{self.seed}:{institution}:ack-key".encode(), digest_size=32).digest()
        return Ed25519Signer(Ed25519PrivateKey.from_private_bytes(seed))

    def registry(self, institutions: Iterable[str]) -> dict[str, dict[str, list[dict[str, str]]]]:
        """``institution_keys_file``'s content: each institution's public ack key, as a JWKS."""
        return {name: self.signer(name).jwks for name in sorted(set(institutions))}

    def is_unresponsive(self, addressee: str) -> bool:
        """Whether this addressee never answers: fixed per seed, however many actions it gets."""
        digest = hashlib.blake2b(f"{self.seed}:{addressee}".encode(), digest_size=8).digest()
        return int.from_bytes(digest) / 2**64 < self.unresponsive_share

    def take(self, action: JsonObject, now_ms: int) -> None:
        """Receive a freeze- or suspension-action version as emitted; redelivered and older versions change nothing."""
        action_id, version = str(action["action_id"]), int(action["version"])
        if version <= self._newest.get(action_id, 0):
            return
        # A newer version replaces whatever the older one was waiting for, even if it gets no answer itself.
        self._newest[action_id] = version
        addressee = str(action.get("addressee") or action["target"]["institution"])
        if action["status"] == "released" or self.is_unresponsive(addressee):
            return
        currency = str(action.get("currency", ""))
        hold = to_minor_units(Decimal(str(action["hold_amount"])), currency) if "hold_amount" in action else None
        if hold == 0:
            return
        # One generator per version: the answer does not depend on what else the desk was given.
        rng = random.Random(f"{self.seed}:{action_id}:{version}")
        low, high = self.ack_delay_s
        due_ms = now_ms + math.ceil(rng.uniform(low, high) * 1000)  # up to the next millisecond
        ack: JsonObject = {"action_id": action_id, "version": version, "addressee": addressee}
        roll = rng.random()
        if roll < NOT_FOUND_SHARE:
            ack |= {"status": "not_found", "note": "no such account" if hold is not None else "no such target"}
        elif hold is not None and hold > 1 and roll < NOT_FOUND_SHARE + PARTIAL_SHARE:
            held = format_minor_units(max(1, hold * rng.randint(10, 90) // 100), currency)
            ack |= {"status": "partial", "amount_held": held, "note": f"only {held} {currency} left to hold"}
        elif hold is not None:
            ack |= {"status": "executed", "amount_held": format_minor_units(hold, currency), "note": "held"}
        else:
            ack |= {"status": "executed", "note": "taken down" if action.get("target_type") == "url" else "suspended"}
        ack["acked_at"] = _rfc3339(due_ms)
        heapq.heappush(self._queue, (due_ms, action_id, version, ack))

    def acks_until(self, now_ms: int) -> list[FeedEvent]:
        """Acks due at or before ``now_ms`` and not returned before, oldest first, for live versions only."""
        acks: list[FeedEvent] = []
        while self._queue and self._queue[0][0] <= now_ms:
            due_ms, action_id, version, ack = heapq.heappop(self._queue)
            if self._newest[action_id] == version:
                signed = self.signer(str(ack["addressee"])).signed(ack)
                acks.append(FeedEvent(ACTION_ACKS.name, action_id.encode(), signed, due_ms))
        return acks


def _rfc3339(at_ms: int) -> str:
    second = datetime.fromtimestamp(at_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{second}.{at_ms % 1000:03d}Z"

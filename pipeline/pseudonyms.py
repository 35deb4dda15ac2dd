"""Keyed pseudonyms for account numbers a recipient must not read in clear.

A per-partner copy shows another institution's account as ``pseud:<32 hex>``: the first 128
bits of HMAC-SHA256 under the war room's ``pseudonym_key`` over ``kind:institution:account``.
The same account always gets the same pseudonym, so a recipient can still see that two steps
(or two orders) involve one account. Without the key nobody can test a guessed account number
against it; the war room, which holds the key and the clear copy on the shared topic, can
(``reveal``). A plain hash would not do: account numbers are short enough to enumerate.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from processors.records import AccountKey, account_label

PSEUDONYM_PREFIX = "pseud:"
PSEUDONYM_HEX_DIGITS = 32  # 128 bits: no collision in any realistic number of accounts
KEYED_DIGEST_PREFIX = "hmac-sha256:"
KNOWN_PSEUDONYMS = 100_000  # about 20 MB at most


@dataclass(frozen=True)
class Pseudonyms:
    """The war room's pseudonymisation key (``Settings.pseudonym_key``), kept out of ``repr``."""

    key: bytes = field(repr=False)
    # The same accounts come back on every version of an order and every step of a trail: an HMAC each time
    # cost more than the rest of a partner's copy. Bounded: cleared when full.
    _known: dict[AccountKey, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("the pseudonym key must not be empty")

    def of(self, account: AccountKey) -> str:
        """``pseud:<hex>`` for an account ``(kind, institution, number)``."""
        known = self._known.get(account)
        if known is None:
            mac = hmac.new(self.key, account_label(account).encode(), hashlib.sha256).hexdigest()
            known = PSEUDONYM_PREFIX + mac[:PSEUDONYM_HEX_DIGITS]
            if len(self._known) >= KNOWN_PSEUDONYMS:
                self._known.clear()
            self._known[account] = known
        return known

    def keyed_digest(self, digest: str) -> str:
        """An evidence digest as a copy may show it: still changes whenever the evidence does.

        The plain ``sha256:`` digest covers the accounts a copy hides, and everything else it
        covers is listed in the copy: a short trail's hidden account numbers could be found by
        trying every number against it.
        """
        return KEYED_DIGEST_PREFIX + hmac.new(self.key, digest.encode(), hashlib.sha256).hexdigest()

    def reveal(self, pseudonym: str, accounts: Iterable[AccountKey]) -> AccountKey | None:
        """For the war room: which of ``accounts`` (say, those in the clear shared copy) ``pseudonym`` stands for."""
        return next((account for account in accounts if hmac.compare_digest(self.of(account), pseudonym)), None)

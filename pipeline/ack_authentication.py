"""Whether an ack really comes from the institution it names, before it may stop an escalation.

Anyone who can write to the shared ``action-acks`` topic could otherwise stop another bank's
escalations by putting that bank's name in ``addressee``. So an ack counts only if

- it arrived on the addressee's own topic, ``action-acks.<addressee>``, which the broker's ACLs let
  only that institution write; or
- it arrived on ``action-acks`` signed with one of the addressee's registered Ed25519 keys
  (``institution_keys_file``), the same way the war room signs its actions (``schemas/signing.py``).

Anything else is refused as ``unauthenticated`` and changes nothing. The same registry checks the
signatures of release requests on the shared topic. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pipeline.topics import ACTION_ACKS, addressee_topic
from processors.records import partner_id
from schemas.decode import Rejection
from schemas.signing import verify_ed25519

UNAUTHENTICATED = "unauthenticated"


class AckAuthentication:
    """Checks each ack's topic, or its signature, against the institution it names."""

    def __init__(self, topic_prefix: str, institution_keys: Mapping[str, Mapping[str, Ed25519PublicKey]]) -> None:
        self.topic_prefix = topic_prefix
        self.shared_topic = topic_prefix + ACTION_ACKS.name
        self.institution_keys = institution_keys
        self._partner_keys = {partner_id(name): keys for name, keys in institution_keys.items()}

    def signed_by_partner(self, partner: str, raw: bytes) -> bool:
        """Whether one of the partner's registered keys signed ``raw`` (a release request on the shared topic)."""
        keys = self._partner_keys.get(partner)
        return bool(keys) and verify_ed25519(raw, keys)

    def is_ack_topic(self, topic: str) -> bool:
        """``action-acks`` or an institution's own ``action-acks.<institution>``."""
        return topic == self.shared_topic or topic.startswith(self.shared_topic + ".")

    def own_topic(self, addressee: str) -> str:
        return self.topic_prefix + addressee_topic(ACTION_ACKS, addressee)

    def refusal(self, topic: str, raw: bytes, addressee: str) -> Rejection | None:
        """None if the ack is the addressee's own; else why it is refused, in a sentence the sender can act on."""
        own = self.own_topic(addressee)
        if topic == own:
            return None
        if topic != self.shared_topic:
            return Rejection(UNAUTHENTICATED, f"an ack for {addressee} arrived on {topic}, another institution's topic")
        keys = self.institution_keys.get(addressee)
        if not keys:
            return Rejection(
                UNAUTHENTICATED,
                f"{addressee} has no registered key, so its acks on {topic} cannot be checked: send them on {own}",
            )
        if verify_ed25519(raw, keys):
            return None
        return Rejection(
            UNAUTHENTICATED,
            f"the ack is not signed by a key registered for {addressee} (Ed25519, kid and signature as in the "
            "README's *Acks*; amounts as decimal strings)",
        )

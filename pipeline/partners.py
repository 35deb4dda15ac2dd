"""Who a message belongs to, and what of it each partner may see.

The war room reads the shared topics, in full. A partner (a bank, wallet provider or exchange,
a telecom operator, a platform) reads only its own copies, ``<topic>.<partner>``, and those
never carry another partner's account numbers or its raw input (README, *Who sees what*):
- an addressee's freeze action shows other institutions' account numbers pseudonymised, and
  its evidence digest keyed (``addressee_freeze_view``);
- a rejected input message goes to the partner it belongs to (``dead_letter_copies``): the
  partner whose own input topic it came on, with its bytes as sent; or else each partner the
  message names, with only the contract's fields and the other partners' account numbers
  pseudonymised. Victim reports name no partner of their own (the reporting portal is the
  war room's), so their dead letters stay on the war room's topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.pseudonyms import Pseudonyms
from pipeline.topics import (
    ACTION_ACKS,
    BANK_TRANSACTIONS,
    INPUT_TOPICS,
    RELEASE_REQUESTS,
    TELECOM_EVENTS,
    partner_suffix,
)
from schemas.events import ActionAck, ReleaseRequest, TelecomEvent

MAX_PARTNER_NAME = 128  # the contract's identifier limit


def partner_name(value: object) -> str | None:
    """``value`` if it can name a partner: a string of at most 128 characters with a letter or digit in it."""
    if not isinstance(value, str) or len(value) > MAX_PARTNER_NAME or partner_suffix(value) is None:
        return None
    return value


def same_partner(name: object, partner: str) -> bool:
    """Whether ``name`` is ``partner``: the same topic suffix, so the same reader."""
    return isinstance(name, str) and partner_suffix(name) == partner_suffix(partner)


def addressee_freeze_view(action: dict[str, Any], pseudonyms: Pseudonyms) -> dict[str, Any]:
    """A freeze action (wire form, unsigned) as its addressee receives it.

    Every account of another institution, in the trail, shows a pseudonym instead of its number;
    the addressee's own accounts stay in clear. The trail digest is keyed (``Pseudonyms.keyed_digest``).
    """
    addressee = action["addressee"]
    trail = [
        {
            **step,
            "from_account": _account_view(step["from_account"], addressee, pseudonyms),
            "to_account": _account_view(step["to_account"], addressee, pseudonyms),
        }
        for step in action["trail"]
    ]
    return {**action, "trail": trail, "trail_digest": pseudonyms.keyed_digest(action["trail_digest"])}


@dataclass(frozen=True, slots=True)
class InputShape:
    """What of a rejected input message its partners get back, and where the message names them."""

    scalars: tuple[str, ...]  # contract fields copied when they hold a string, number, boolean or null
    accounts: tuple[str, ...]  # account fields: institution, kind and the number (pseudonymised unless the reader's)
    named_by: tuple[tuple[str, ...], ...]  # paths to the names of the partners the message belongs to


INPUT_SHAPES: dict[str, InputShape] = {
    BANK_TRANSACTIONS.name: InputShape(
        scalars=("txn_id", "amount", "currency", "executed_at"),
        accounts=("from_account", "to_account"),
        named_by=(("from_account", "institution"), ("to_account", "institution")),
    ),
    TELECOM_EVENTS.name: InputShape(scalars=tuple(TelecomEvent.model_fields), accounts=(), named_by=(("operator",),)),
    ACTION_ACKS.name: InputShape(scalars=tuple(ActionAck.model_fields), accounts=(), named_by=(("addressee",),)),
    RELEASE_REQUESTS.name: InputShape(
        scalars=tuple(ReleaseRequest.model_fields), accounts=(), named_by=(("requester",),)
    ),
}


def dead_letter_copies(
    topic: str, raw: bytes | None, topic_prefix: str, pseudonyms: Pseudonyms
) -> list[tuple[str, bytes]]:
    """(partner, payload) for each partner a rejected message belongs to; none when no partner is known.

    A message on a partner's own input topic (``<input>.<partner>``, which only that partner
    may write) is that partner's, bytes and all. Otherwise the partners are those the message
    names (``INPUT_SHAPES``), if it is a JSON object; anything else (not JSON, a victim report,
    a name unfit for a topic) has no partner and stays on the war room's topic.
    """
    base = topic.removeprefix(topic_prefix)
    for spec in INPUT_TOPICS:
        if base.startswith(spec.name + "."):
            owner = partner_name(base[len(spec.name) + 1 :])
            return [(owner, raw or b"")] if owner is not None else []
    shape = INPUT_SHAPES.get(base)
    if shape is None or not raw:
        return []
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(message, dict):
        return []
    partners: dict[str | None, str] = {}  # by topic suffix: one copy per reader
    for path in shape.named_by:
        name = partner_name(_at(message, path))
        if name is not None:
            partners.setdefault(partner_suffix(name), name)
    return [(partner, _minimised(message, shape, partner, pseudonyms)) for partner in partners.values()]


def _minimised(message: dict[str, Any], shape: InputShape, partner: str, pseudonyms: Pseudonyms) -> bytes:
    """The contract's fields of ``message`` as ``partner`` may see them; extra fields are dropped."""
    kept: dict[str, Any] = {}
    for name in shape.scalars:
        if name in message:
            value = message[name]
            kept[name] = value if _is_scalar(value) else "(omitted: not a string, number or boolean)"
    for name in shape.accounts:
        if name in message:
            kept[name] = _account_view(message[name], partner, pseudonyms)
    return orjson.dumps(kept)


def _account_view(value: object, reader: str, pseudonyms: Pseudonyms) -> object:
    """An account reference as ``reader`` may see it: its own in clear, anyone else's number pseudonymised.

    Only ``institution``, ``account`` and ``kind`` are kept. An account that is not an object
    (input gone wrong) is pseudonymised whole: it may well be an account number.
    """
    if not isinstance(value, dict):
        return pseudonyms.of(("?", "?", _text(value)))
    view = {key: value[key] for key in ("institution", "account", "kind") if key in value and _is_scalar(value[key])}
    if "account" in value and not same_partner(value.get("institution"), reader):
        kind, institution = value.get("kind", "bank"), value.get("institution", "?")
        view["account"] = pseudonyms.of((_text(kind), _text(institution), _text(value["account"])))
    return view


def _text(value: object) -> str:
    """The text a pseudonym is computed over: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _at(message: dict[str, Any], path: tuple[str, ...]) -> object:
    value: object = message
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value

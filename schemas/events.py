"""Input topics' wire contract, version 1: what banks, wallets and reporting portals send."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Literal, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator

from schemas.fields import FieldError, parse_amount, parse_currency, parse_ip, parse_timestamp_ms, to_minor_units
from schemas.json_rules import IP_SCHEMA, TIMESTAMP_SCHEMA, amount_fits_currency, amount_schema, required_by_kind

SCHEMA_VERSION = 1
T = TypeVar("T")


def _as_validator(parse: Callable[[object], T]) -> Callable[[object], T]:
    def validate(value: object) -> T:
        try:
            return parse(value)
        except FieldError as error:
            raise ValueError(str(error)) from None

    return validate


Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# WithJsonSchema: the parsers' rules, as JSON Schema (schemas/json_rules.py), replace what pydantic derives.
Amount = Annotated[Decimal, BeforeValidator(_as_validator(parse_amount)), WithJsonSchema(amount_schema())]
Timestamp = Annotated[int, BeforeValidator(_as_validator(parse_timestamp_ms)), WithJsonSchema(TIMESTAMP_SCHEMA)]
Currency = Annotated[
    str,
    BeforeValidator(_as_validator(parse_currency)),
    Field(json_schema_extra={"pattern": "^[A-Z][A-Z0-9]{2,9}$"}),
]

Msisdn = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$"), Field(description="E.164")]
IpAddress = Annotated[str, BeforeValidator(_as_validator(parse_ip)), WithJsonSchema(IP_SCHEMA)]


class WireModel(BaseModel):
    # strict: no silent coercion of 123 into "123"; extra fields are ignored as the contract promises.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class AccountRef(WireModel):
    institution: Identifier
    account: Identifier
    kind: Literal["bank", "ewallet", "crypto", "cash"] = "bank"


class MoneyModel(WireModel):
    """A model with an ``amount`` in a ``currency``: the amount must fit the currency's minor unit."""

    model_config = ConfigDict(json_schema_extra=amount_fits_currency)
    amount: Amount
    currency: Currency

    @model_validator(mode="after")
    def _amount_fits_currency(self) -> Self:
        try:
            to_minor_units(self.amount, self.currency)
        except FieldError as error:
            raise ValueError(f"amount: {error}") from None
        return self


class ReportedTransfer(MoneyModel):
    from_account: AccountRef
    to_account: AccountRef
    sent_at: Timestamp
    txn_id: Identifier | None = None


class VictimReport(WireModel):
    """A victim's report to the war room: who they paid, how much and when."""

    report_id: Identifier
    reported_at: Timestamp
    victim_id: Identifier
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    scam_type: Identifier
    transfers: Annotated[list[ReportedTransfer], Field(min_length=1, max_length=200)]
    scammer_phones: Annotated[list[Msisdn], Field(max_length=50)] = []
    scam_urls: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=2048)]], Field(max_length=50)
    ] = []
    revision: Annotated[
        int,
        Field(
            ge=1,
            le=2**31 - 1,
            description="a correction re-sends the report_id with other content and a higher revision; "
            "the highest revision wins in any arrival order",
        ),
    ] = 1


class BankTransaction(MoneyModel):
    """One executed transfer from a partner institution's feed."""

    txn_id: Identifier
    from_account: AccountRef
    to_account: AccountRef
    executed_at: Timestamp


TelecomKind = Literal["call", "sms", "sim_registration", "sim_swap", "data_session"]
# Which optional field each kind of telecom event cannot do without.
REQUIRED_BY_KIND: dict[str, str] = {
    "call": "counterparty_msisdn",
    "sms": "counterparty_msisdn",
    "sim_registration": "registered_id",
    "data_session": "ip",
}


class TelecomEvent(WireModel):
    """One event from an operator's network about a subscriber number (``msisdn``)."""

    model_config = ConfigDict(json_schema_extra=required_by_kind(REQUIRED_BY_KIND))
    event_id: Identifier
    operator: Identifier
    kind: TelecomKind
    msisdn: Msisdn
    occurred_at: Timestamp
    counterparty_msisdn: Msisdn | None = None
    registered_id: Identifier | None = Field(default=None, description="opaque identity document reference")
    imei: Annotated[str, StringConstraints(pattern=r"^[0-9]{14,16}$")] | None = None
    ip: IpAddress | None = None
    cell_id: Identifier | None = None

    @model_validator(mode="after")
    def _has_what_its_kind_needs(self) -> Self:
        needed = REQUIRED_BY_KIND.get(self.kind)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"{needed}: required for a {self.kind} event")
        return self


class PartnerSigned(WireModel):
    """A partner's message that, on the shared topic, proves its sender by a signature (README, *Acks*)."""

    kid: Identifier | None = Field(
        default=None, description="on the shared topic: the id of the sender's registered Ed25519 key that signed"
    )
    signature: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None,
        description="on the shared topic: ed25519=<base64url> over the message's canonical JSON (everything but "
        "signature, kid included; amounts as decimal strings), as for actions. Not needed on the sender's own "
        "topic (<topic>.<sender>)",
    )


class ActionAck(PartnerSigned):
    """An institution's answer to an action version it received."""

    action_id: Identifier
    version: Annotated[int, Field(ge=1)]
    addressee: Identifier
    status: Literal["executed", "partial", "rejected", "not_found"]
    amount_held: Amount | None = Field(default=None, description="freeze actions: what the institution now holds")
    acked_at: Timestamp
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class ReleaseRequest(PartnerSigned):
    """A request to lift an action (an appeal): from the action's addressee, or from the war room."""

    request_id: Identifier = Field(description="the requester's own id for the request; the answer carries it")
    action_id: Identifier
    requester: Identifier = Field(
        description="who asks, as named in the actions (the addressee, or the war room); on release-requests.<x> "
        "it must be x, on the shared release-requests the request must be signed with a key registered for it"
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="why the hold or suspension should be lifted, for the war room's record"
    )
    requested_at: Timestamp

"""Output topics' wire contract, version 1: the orders institutions act on, and dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import AccountRef

# Lists of ids are bounded so that a fan-in of thousands of victims still fits in one message.
BOUNDED_IDS = "bounded: the first max_listed_ids (default 1000), fewer if the message would exceed max_action_bytes"
# Every action and warning is signed the same way (schemas/signing.py).
KeyId = Annotated[
    str,
    Field(
        description="the key that signed: the war room's key's RFC 7638 thumbprint, as listed in its JWKS "
        "(with signing_algorithm hmac: the addressee's name, or default)"
    ),
]
Signature = Annotated[
    str,
    Field(
        description="ed25519=<base64url> over the canonical encoding (everything but signature, kid included); "
        "hmac-sha256=<hex> with signing_algorithm hmac"
    ),
]


OTHERS_PSEUDONYMISED = (
    "in the addressee's copy (freeze-actions.<addressee>), the account number of any other institution "
    "is pseud:<32 hex>, a keyed hash only the war room can match to the number"
)


class OutputModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrailStep(OutputModel):
    """One transfer on the way from the victim to the target, with the tainted share it carried."""

    txn_id: str
    report_id: str = Field(description="the lowest of report_ids (kept for version-1 consumers)")
    report_ids: list[str] = Field(
        description="the reports whose money this transfer carried: at most 10 of them, the lowest ids"
    )
    hop: int = Field(ge=0, description="0 = the transfer the victim made")
    from_account: AccountRef = Field(description=OTHERS_PSEUDONYMISED)
    to_account: AccountRef = Field(description=OTHERS_PSEUDONYMISED)
    tainted_amount: str = Field(description="decimal string, the part of the transfer attributed to the reports")
    at: datetime


class FreezeAction(OutputModel):
    """Hold the traced amount at one account. Consumers keep the highest ``version`` per ``action_id``."""

    action_id: str = Field(description="stable for the target and currency")
    version: int = Field(ge=1)
    addressee: str = Field(description="the institution that must act: bank, wallet provider or exchange")
    status: Literal["active", "released"] = Field(
        description="released: a re-trace attributes no tainted money here any more; lift the hold"
    )
    target: AccountRef
    hold_amount: str = Field(description="decimal string; tainted money attributed as still in the account")
    currency: str
    priority: int = Field(ge=0, le=100, description="higher = act first")
    hop: int = Field(ge=0, description="0 = the account the victim paid")
    tainted_received: str = Field(description="tainted money that reached the account")
    tainted_moved_on: str = Field(description="tainted money traced out of the account")
    report_ids: list[str] = Field(description="the reports behind the action; " + BOUNDED_IDS)
    report_ids_total: int = Field(ge=0, description="how many reports are behind the action, listed or not")
    txn_ids: list[str] = Field(description="the transfers that carried the money here; " + BOUNDED_IDS)
    txn_ids_total: int = Field(ge=0, description="how many transfers carried the money here, listed or not")
    reasons: list[str]
    trail: list[TrailStep] = Field(
        description="evidence: the tainted transfers from the victims to here, in time order. Bounded: when the "
        "trail has more than max_trail_steps (default 200; fewer if the message would exceed max_action_bytes), "
        "half of the listed steps are those with the largest tainted_amount and the rest the most recent; "
        "trail_digest pins the full trail"
    )
    trail_steps_total: int = Field(ge=0, description="how many steps the full trail has, listed or not")
    trail_digest: str = Field(
        description="sha256:<hex> over the report ids, every trail step (listed or not) and the hub or link "
        "reason; it changes whenever the evidence does, and the full evidence is reproducible from the inputs. "
        "In the addressee's copy: hmac-sha256:<hex> of that digest under the war room's pseudonym key, which "
        "also changes whenever the evidence does but cannot be used to guess pseudonymised account numbers"
    )
    issued_at: datetime
    report_received_at: datetime = Field(description="when the first report behind this action reached us")
    hold_expires_at: datetime = Field(description="holds are time-limited; renew with new evidence")
    escalation: int = Field(ge=0, description="times this order missed its SLA and was re-issued")
    kid: KeyId
    signature: Signature


class DeadLetter(OutputModel):
    """An input message we could not use, with the reason and the original bytes."""

    source_topic: str
    partition: int
    offset: int
    reason: str = Field(description="short machine-readable code, e.g. malformed_json, invalid_event, oversized")
    error: str = Field(description="what is wrong, in a sentence a partner can act on")
    payload: str = Field(
        description="the original bytes; only their beginning if all of them would make the dead letter exceed "
        "max_action_bytes, and error then says so"
    )
    payload_encoding: Literal["utf-8", "base64"]
    received_at: datetime
    partner: str | None = Field(
        default=None,
        description="the partner this copy is for (dead-letters.<partner>); null on the war room's dead-letters "
        "topic. A partner's copy carries its own input as sent when it came on that partner's own topic; "
        "otherwise only the contract's fields, with other partners' account numbers pseudonymised",
    )


class SuspensionAction(OutputModel):
    """Suspend a number, handset or IP at its operator, or take a page down at its platform."""

    action_id: str = Field(description="stable for the target")
    version: int = Field(ge=1)
    status: Literal["active", "released"]
    target_type: Literal["msisdn", "imei", "ip", "url"]
    target: str
    addressee: str = Field(description="the operator or platform that must act")
    priority: int = Field(ge=0, le=100)
    reasons: list[str]
    report_ids: list[str] = Field(description=BOUNDED_IDS)
    report_ids_total: int = Field(ge=0, description="how many reports are behind the action, listed or not")
    evidence: list[str] = Field(description="telecom event ids behind the action; " + BOUNDED_IDS)
    evidence_total: int = Field(ge=0, description="how many telecom events are behind the action, listed or not")
    evidence_digest: str = Field(
        description="sha256:<hex> over every report id and telecom event id, listed or not; "
        "it changes whenever either list does"
    )
    issued_at: datetime
    report_received_at: datetime
    escalation: int = Field(ge=0, description="times this order missed its SLA and was re-issued")
    kid: KeyId
    signature: Signature


class VictimWarning(OutputModel):
    """Warn a number a reported scammer has been calling or messaging, before its owner pays."""

    warning_id: str
    version: int = Field(ge=1)
    status: Literal["active", "released"] = Field(description="released: the number is no longer thought at risk")
    msisdn: str
    operator: str
    scammer_msisdn: str
    last_contact_at: datetime
    report_ids: list[str] = Field(description=BOUNDED_IDS)
    report_ids_total: int = Field(ge=0, description="how many reports reached the warned number, listed or not")
    evidence_digest: str = Field(
        description="sha256:<hex> over every report id, listed or not; it changes whenever the list does"
    )
    issued_at: datetime
    kid: KeyId
    signature: Signature


class ReleaseAnswer(OutputModel):
    """The decision on a release request, for the requester: granted (with the released version) or refused."""

    request_id: str
    action_id: str
    requester: str
    decision: Literal["granted", "refused"]
    reason: str = Field(
        description="granted, or why not: reports_still_arriving, already_released, unknown_action (no such action, "
        "or not the requester's), expired_action"
    )
    explanation: str = Field(description="the decision in a sentence the requester can act on")
    released_version: int | None = Field(description="granted: the version of the action that lifts it")
    decided_at: datetime
    kid: KeyId
    signature: Signature

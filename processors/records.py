"""The domain's view of input events: compact, broker-free, already validated.

Amounts are integer minor units and times epoch milliseconds, so the trace does
exact arithmetic and keeps millions of transactions in memory cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

# (kind, institution, account): a tuple hashes fast and interns well.
AccountKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Transfer:
    txn_id: str
    source: AccountKey
    target: AccountKey
    amount: int
    currency: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Report:
    report_id: str
    reported_at_ms: int
    received_at_ms: int
    victim_id: str
    country: str
    scam_type: str
    transfers: tuple[Transfer, ...]

    @property
    def loss_by_currency(self) -> dict[str, int]:
        loss: dict[str, int] = {}
        for transfer in self.transfers:
            loss[transfer.currency] = loss.get(transfer.currency, 0) + transfer.amount
        return loss


def account_label(account: AccountKey) -> str:
    """The Kafka key and log label of an account: ``kind:institution:account``."""
    kind, institution, number = account
    return f"{kind}:{institution}:{number}"

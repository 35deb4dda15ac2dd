"""msgspec mirror of the bank-transaction contract for the high-rate feed.

Field values go through the same parsers as the pydantic model (schemas.fields);
tests/unit/schemas/test_fast_decoder.py checks both accept and reject the same input.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class AccountRefStruct(msgspec.Struct, frozen=True):
    institution: Identifier
    account: Identifier
    kind: Literal["bank", "ewallet", "crypto", "cash"] = "bank"


class BankTransactionStruct(msgspec.Struct, frozen=True):
    txn_id: Identifier
    from_account: AccountRefStruct
    to_account: AccountRefStruct
    amount: int | float | str
    currency: str
    executed_at: str


bank_transaction_decoder = msgspec.json.Decoder(BankTransactionStruct)

"""A seeded scam scenario on the v1 wire contract, for ``interceptor demo`` and the benchmark.

The war-room demo needs partner-like input (victims' reports, a busy bank feed
with innocent traffic, keyed and unkeyed messages, the odd broken one) and it
needs the answer: which mule accounts hold how much of whose money, so it can
say what share of the stolen money the pipeline froze. Everything here is a
pure function of the seed and the time elapsed since the first call: no broker
and no clock reads (the caller passes ``now_ms``), so a test replays a run exactly.

Ground-truth amounts are integer minor units and times epoch milliseconds, as
in ``processors.records``.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import orjson

from pipeline.errors import InterceptorError
from pipeline.topics import BANK_TRANSACTIONS, VICTIM_REPORTS
from processors.money_trail import TraceSettings
from processors.records import AccountKey, account_label
from schemas.fields import FieldError, format_minor_units, minor_unit_exponent, parse_currency

JsonObject = dict[str, Any]


class Institution(NamedTuple):
    code: str
    kind: Literal["bank", "ewallet", "crypto"]


THAI_INSTITUTIONS = (
    Institution("KBNK", "bank"),
    Institution("SCBK", "bank"),
    Institution("BBLK", "bank"),
    Institution("KTBK", "bank"),
    Institution("BAYK", "bank"),
    Institution("TMNW", "ewallet"),
    Institution("BTKX", "crypto"),
)
SCAM_TYPES = ("call_center", "investment", "romance", "online_shopping", "loan", "job_offer")
# A chain longer than the trace follows would put money in the ground truth the pipeline may never reach.
MAX_CHAIN_HOPS = TraceSettings().max_hops

LOSS_MAJOR = (5_000, 500_000)
BACKGROUND_MAJOR = (20, 50_000)
PRE_THEFT_MAJOR = (500, 20_000)
# Disjoint halves of the account-number permutation: innocent traffic never touches a mule,
# so nothing but the scenario moves mule money and the ground truth stays exact.
_MULE_SPACE = 500_000_000
# Per-case id ranges: a case has at most 9 mules, so at most 18 transfers.
_CASE_MULE_SLOTS = 16
_CASE_TXN_SLOTS = 32
_ZONES = {"Z": UTC, "+07:00": timezone(timedelta(hours=7))}


class FeedSettingsError(InterceptorError):
    """The scenario cannot be built from these settings."""


@dataclass(frozen=True)
class FeedSettings:
    seed: int = 0
    background_tps: float = 200.0
    cases_per_minute: float = 12.0
    # Victims report this long after paying; really ~18 h, compressed so a demo shows it.
    report_delay_s: float = 20.0
    max_chain_hops: int = MAX_CHAIN_HOPS
    currency: str = "THB"
    institutions: tuple[Institution, ...] = THAI_INSTITUTIONS
    background_accounts: int = 50_000
    # Every Nth background transaction is replaced by a broken message; 0 = never.
    bad_event_every: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.max_chain_hops <= MAX_CHAIN_HOPS:
            raise FeedSettingsError(f"max_chain_hops must be 1..{MAX_CHAIN_HOPS}, got {self.max_chain_hops}")
        if self.background_tps < 0 or self.cases_per_minute < 0 or self.report_delay_s < 0:
            raise FeedSettingsError("background_tps, cases_per_minute and report_delay_s must not be negative")
        if self.bad_event_every < 0:
            raise FeedSettingsError(f"bad_event_every must be 0 (never) or positive, got {self.bad_event_every}")
        if self.background_accounts < 2 or self.background_accounts > _MULE_SPACE:
            raise FeedSettingsError(f"background_accounts must be 2..{_MULE_SPACE}")
        if not self.institutions:
            raise FeedSettingsError("institutions must not be empty")
        try:
            parse_currency(self.currency)
        except FieldError as error:
            raise FeedSettingsError(f"currency: {error}") from None


@dataclass(frozen=True, slots=True)
class FeedEvent:
    topic: str
    key: bytes | None
    # bytes only for a deliberately broken bank transaction, sent as is to exercise dead letters.
    value: JsonObject | bytes
    at_ms: int

    def encode(self) -> bytes:
        return self.value if isinstance(self.value, bytes) else orjson.dumps(self.value)


@dataclass(frozen=True, slots=True)
class MuleHop:
    account: AccountKey
    hop: int  # 0 = the account the victim paid
    received: int  # tainted money that arrived
    kept: int  # what stayed there: the part a freeze can still catch
    arrived_ms: int
    via_txn_id: str


@dataclass(frozen=True, slots=True)
class ScamCase:
    report_id: str
    victim_id: str
    payment_txn_id: str
    stolen: int
    currency: str
    paid_at_ms: int
    reported_at_ms: int
    mules: tuple[MuleHop, ...]  # by hop, then arrival
    pre_theft_txn_ids: frozenset[str]  # mules' outflows before the money came: never traced

    @property
    def chain_hops(self) -> int:
        return max(mule.hop for mule in self.mules)


class ScenarioFeed:
    """Background traffic and scam cases, released as their time comes."""

    def __init__(self, settings: FeedSettings) -> None:
        self.settings = settings
        # Ground truth, in start order; a case's report follows at its reported_at_ms.
        self.cases: list[ScamCase] = []
        self._accounts = _innocent_accounts(settings.institutions, settings.background_accounts)
        # One generator per process, so how often the caller polls cannot change what is drawn.
        self._background_rng = random.Random(f"{settings.seed}:background")
        self._arrivals_rng = random.Random(f"{settings.seed}:cases")
        self._clock_ms: int | None = None
        self._next_background = math.inf
        self._background_count = 0
        self._next_case = math.inf
        # Case events not yet due, in emission order: (at_ms, 0 = case, case number, sequence, event).
        self._pending: list[tuple[int, int, int, int, FeedEvent]] = []

    def events_until(self, now_ms: int) -> list[FeedEvent]:
        """Every event due at or before ``now_ms`` and not returned before; the first call starts the clock."""
        if self._clock_ms is None:
            self._next_background = now_ms + self._gap_ms(self._background_rng, self.settings.background_tps)
            self._next_case = now_ms + self._gap_ms(self._arrivals_rng, self.settings.cases_per_minute / 60)
        elif now_ms <= self._clock_ms:
            return []
        self._clock_ms = now_ms

        # Clock readings round up, so nothing lands on a millisecond the caller was already given.
        # A case is planned at its start, before any of its events, which all lie at or after it.
        while self._next_case <= now_ms:
            self._plan_case(len(self.cases), math.ceil(self._next_case))
            self._next_case += self._gap_ms(self._arrivals_rng, self.settings.cases_per_minute / 60)

        due: list[tuple[int, int, int, int, FeedEvent]] = []
        while self._pending and self._pending[0][0] <= now_ms:
            due.append(heapq.heappop(self._pending))
        while self._next_background <= now_ms:
            at_ms = math.ceil(self._next_background)
            # At the same millisecond, background follows case events: any fixed rule keeps runs equal.
            due.append((at_ms, 1, self._background_count, 0, self._background_event(at_ms)))
            self._next_background += self._gap_ms(self._background_rng, self.settings.background_tps)
        due.sort(key=lambda entry: entry[:4])
        return [entry[4] for entry in due]

    @staticmethod
    def _gap_ms(rng: random.Random, per_second: float) -> float:
        # Poisson arrivals; a float clock keeps the rate exact when the mean gap is a few ms.
        return rng.expovariate(per_second / 1000) if per_second > 0 else math.inf

    def _background_event(self, at_ms: int) -> FeedEvent:
        rng, serial = self._background_rng, self._background_count
        self._background_count += 1
        value = _background_transaction(rng, self._accounts, serial, at_ms, self.settings.currency)
        key = _bank_key(rng, value)
        every = self.settings.bad_event_every
        if every and (serial + 1) % every == 0:
            return FeedEvent(BANK_TRANSACTIONS.name, key, _spoil(value, (serial + 1) // every - 1), at_ms)
        return FeedEvent(BANK_TRANSACTIONS.name, key, value, at_ms)

    def _plan_case(self, number: int, start_ms: int) -> None:
        # Each case draws from its own generator: its story does not depend on the traffic around it.
        rng = random.Random(f"{self.settings.seed}:case:{number}")
        settings, currency = self.settings, self.settings.currency
        unit = 10 ** minor_unit_exponent(currency)
        txn_serials = iter(range(number * _CASE_TXN_SLOTS, (number + 1) * _CASE_TXN_SLOTS))
        first_mule = _MULE_SPACE + number * _CASE_MULE_SLOTS
        mule_serials = iter(range(first_mule, first_mule + _CASE_MULE_SLOTS))
        events: list[FeedEvent] = []

        def new_mule() -> AccountKey:
            institution = rng.choice(settings.institutions)
            return (institution.kind, institution.code, _account_number(next(mule_serials)))

        def transfer(source: AccountKey, target: AccountKey, amount: int, at_ms: int) -> JsonObject:
            value = _bank_transaction(
                rng, _txn_id(source, 2 * next(txn_serials) + 1), source, target, amount, currency, at_ms
            )
            events.append(FeedEvent(BANK_TRANSACTIONS.name, _bank_key(rng, value), value, at_ms))
            return value

        victim = rng.choice(self._accounts)
        stolen = _random_amount(rng, LOSS_MAJOR, unit)
        paid_at = start_ms + rng.randint(2_000, 10_000)
        chain_hops = rng.randint(1, settings.max_chain_hops)
        payment = transfer(victim, first := new_mule(), stolen, paid_at)

        # (account, hop, received, arrived_ms, via txn, forwards further): breadth first, so in hop order.
        arrivals = [(first, 0, stolen, paid_at, payment["txn_id"], True)]
        mules: list[MuleHop] = []
        pre_theft: set[str] = set()
        for account, hop, received, arrived_ms, via, forwards in arrivals:
            if rng.random() < 0.3:
                # Money the mule moved before the victim's arrived is its own business, not the case's.
                at_ms = rng.randint(start_ms, arrived_ms - 1_000)
                earlier = transfer(
                    account, rng.choice(self._accounts), _random_amount(rng, PRE_THEFT_MAJOR, unit), at_ms
                )
                pre_theft.add(earlier["txn_id"])
            sent = 0
            if forwards:
                onward = received if rng.random() < 0.6 else received * rng.randint(70, 97) // 100
                onward -= onward % unit  # mules move whole baht (units)
                shares = [onward]
                if rng.random() < 0.3:
                    side = onward * rng.randint(20, 50) // 100
                    shares = [onward - side, side]
                for index, share in enumerate(shares):
                    target, at_ms = new_mule(), arrived_ms + rng.randint(1_500, 15_000)
                    moved = transfer(account, target, share, at_ms)
                    # Only the first share carries the chain on; a split-off share stays put.
                    arrivals.append(
                        (target, hop + 1, share, at_ms, moved["txn_id"], index == 0 and hop + 1 < chain_hops)
                    )
                    sent += share
            mules.append(MuleHop(account, hop, received, received - sent, arrived_ms, via))

        reported_at = paid_at + round(settings.report_delay_s * 1000)
        report = _victim_report(rng, number, victim, payment, reported_at)
        events.append(FeedEvent(VICTIM_REPORTS.name, report["report_id"].encode(), report, reported_at))
        for sequence, event in enumerate(events):
            heapq.heappush(self._pending, (event.at_ms, 0, number, sequence, event))
        self.cases.append(
            ScamCase(
                report_id=report["report_id"],
                victim_id=report["victim_id"],
                payment_txn_id=payment["txn_id"],
                stolen=stolen,
                currency=currency,
                paid_at_ms=paid_at,
                reported_at_ms=reported_at,
                mules=tuple(sorted(mules, key=lambda mule: (mule.hop, mule.arrived_ms))),
                pre_theft_txn_ids=frozenset(pre_theft),
            )
        )


def bulk_bank_transactions(count: int, seed: int, start_ms: int) -> Iterator[bytes]:
    """Encoded background transactions for the benchmark: unique txn_ids, executed 1 ms apart."""
    settings = FeedSettings(seed=seed)
    rng = random.Random(f"{seed}:bulk")
    accounts = _innocent_accounts(settings.institutions, settings.background_accounts)
    for serial in range(count):
        yield orjson.dumps(_background_transaction(rng, accounts, serial, start_ms + serial, settings.currency))


def _innocent_accounts(institutions: tuple[Institution, ...], count: int) -> list[AccountKey]:
    return [
        (institutions[n % len(institutions)].kind, institutions[n % len(institutions)].code, _account_number(n))
        for n in range(count)
    ]


def _account_number(n: int) -> str:
    # 3**18 is coprime to 10**9: a permutation, so distinct n give distinct, random-looking numbers.
    return f"{(n * 387_420_489) % 1_000_000_000:010d}"


def _txn_id(source: AccountKey, serial: int) -> str:
    # Even serials are background, odd ones case transfers: unique without a shared counter,
    # and alike on the wire, as the pipeline sees them.
    return f"{source[1]}-{serial:012d}"


def _background_transaction(
    rng: random.Random, accounts: list[AccountKey], serial: int, at_ms: int, currency: str
) -> JsonObject:
    source = rng.randrange(len(accounts))
    target = rng.randrange(len(accounts) - 1)
    target += target >= source
    amount = _random_amount(rng, BACKGROUND_MAJOR, 10 ** minor_unit_exponent(currency))
    return _bank_transaction(
        rng, _txn_id(accounts[source], 2 * serial), accounts[source], accounts[target], amount, currency, at_ms
    )


def _bank_transaction(
    rng: random.Random,
    txn_id: str,
    source: AccountKey,
    target: AccountKey,
    amount: int,
    currency: str,
    at_ms: int,
) -> JsonObject:
    return {
        "txn_id": txn_id,
        "from_account": _account_ref(rng, source),
        "to_account": _account_ref(rng, target),
        "amount": _wire_amount(rng, amount, currency),
        "currency": currency,
        "executed_at": _rfc3339(rng, at_ms),
    }


def _victim_report(
    rng: random.Random, number: int, victim: AccountKey, payment: JsonObject, reported_at: int
) -> JsonObject:
    report: JsonObject = {
        "report_id": f"RPT-{number + 1:07d}",
        "reported_at": _rfc3339(rng, reported_at),
        "victim_id": f"V{_account_number(number)}",
        "country": "TH",
        "scam_type": rng.choice(SCAM_TYPES),
        "transfers": [
            {
                "from_account": _account_ref(rng, victim),
                "to_account": dict(payment["to_account"]),
                # Victims write the amount their own way, not the bank's.
                "amount": payment["amount"] if rng.random() < 0.5 else str(payment["amount"]),
                "currency": payment["currency"],
                "sent_at": payment["executed_at"],
                "txn_id": payment["txn_id"],
            }
        ],
    }
    if rng.random() < 0.6:
        report["scammer_phones"] = [f"+66{rng.choice('689')}{rng.randrange(10**8):08d}"]
    if rng.random() < 0.5:
        # .example is reserved: nothing in a demo log links to a real site.
        report["scam_urls"] = [f"https://{rng.choice(('gift', 'invest', 'parcel', 'loan'))}-{number}.example/pay"]
    return report


def _account_ref(rng: random.Random, account: AccountKey) -> JsonObject:
    kind, institution, number = account
    if kind == "bank" and rng.random() < 0.3:
        return {"institution": institution, "account": number}  # the contract's default kind
    return {"institution": institution, "account": number, "kind": kind}


def _bank_key(rng: random.Random, value: JsonObject) -> bytes | None:
    # Partners that key their feed use the source account; a quarter of messages come unkeyed.
    if rng.random() < 0.25:
        return None
    source = value["from_account"]
    return account_label((source.get("kind", "bank"), source["institution"], source["account"])).encode()


def _random_amount(rng: random.Random, major_range: tuple[int, int], unit: int) -> int:
    # Log-uniform: small payments are common, large ones rare but present.
    low, high = major_range
    minor = int(math.exp(rng.uniform(math.log(low), math.log(high))) * unit)
    return minor - minor % unit if rng.random() < 0.5 else minor


def _wire_amount(rng: random.Random, minor: int, currency: str) -> str | int | float:
    if rng.random() < 0.5:
        return format_minor_units(minor, currency)
    exponent = minor_unit_exponent(currency)
    unit: int = 10**exponent
    if minor % unit == 0:
        return minor // unit
    # A float's shortest form gives back two decimals exactly; finer units travel as text only.
    return minor / unit if exponent <= 2 else format_minor_units(minor, currency)


def _rfc3339(rng: random.Random, at_ms: int) -> str:
    zone = "+07:00" if rng.random() < 0.5 else "Z"
    return f"{_second_text(at_ms // 1000, zone)}.{at_ms % 1000:03d}{zone}"


@lru_cache(maxsize=4096)
def _second_text(second: int, zone: str) -> str:
    return datetime.fromtimestamp(second, tz=_ZONES[zone]).strftime("%Y-%m-%dT%H:%M:%S")


def _spoil(value: JsonObject, nth: int) -> bytes:
    """A partner mistake the pipeline must dead-letter, cycling so a demo shows each kind."""
    match nth % 6:
        case 0:
            return orjson.dumps(value)[:-9]  # cut off in transit
        case 1:
            return orjson.dumps({**value, "amount": f"-{value['amount']}"})
        case 2:
            return orjson.dumps({**value, "executed_at": value["executed_at"][:23]})  # zone dropped
        case 3:
            return orjson.dumps({key: field for key, field in value.items() if key != "to_account"})
        case 4:
            exponent = minor_unit_exponent(value["currency"])
            return orjson.dumps({**value, "amount": "1." + "5" * (exponent + 1)})  # finer than the currency
        case _:
            return orjson.dumps(value).replace(b'"account":"', b'"account":"\xff', 1)  # not UTF-8

"""A seeded scam scenario on the v1 wire contract, for ``interceptor demo`` and the benchmark.

The war-room demo needs partner-like input (victims' reports, a busy bank feed
with innocent traffic, keyed and unkeyed messages, the odd broken one) and it
needs the answer: which mule accounts hold how much of whose money, so it can
say what share of the stolen money the pipeline froze. Everything here is a
pure function of the seed and the time elapsed since the first call: no broker
and no clock reads (the caller passes ``now_ms``), so a test replays a run exactly.

With ``FeedSettings(telecom=True)`` operators' records join in: each case's
scammer numbers are registered, call the victim before the payment and call or
message a few other people (who never report: the ones to warn), next to
innocent subscribers' traffic. Every record comes from the home operator of its
``msisdn``, so a call or message is reported twice, by the caller's operator and
by the callee's (``msisdn`` the callee, ``counterparty_msisdn`` the caller).
Numbers, identity references, handsets and IP addresses come from ranges that
innocent and scam traffic never share, and no two cases share any, so the
ground truth (which numbers to suspend, which to warn) stays exact.

Ground-truth amounts are integer minor units and times epoch milliseconds, as
in ``processors.records``.
"""

from __future__ import annotations

import heapq
import ipaddress
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import orjson

from pipeline.errors import InterceptorError
from pipeline.topics import BANK_TRANSACTIONS, TELECOM_EVENTS, VICTIM_REPORTS
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

TELECOM_OPERATORS = ("AIS", "TRUE", "DTAC")
# Thai mobile numbers, +66 8 or 9 and eight digits, permuted like account numbers. Innocent
# subscribers take the lower half of the permutation, scammers' numbers the upper half.
_PHONE_SPACE = 2 * 10**8
_SCAM_PHONE_BASE = 10**8
# Per-case ranges: at most 2 reported numbers and 1 burner; 3 registrations, 2 data sessions
# and 7 calls or messages, each reported by both parties: at most 19 records.
_CASE_PHONE_SLOTS = 4
_CASE_TELECOM_SLOTS = 24
# 13-digit identity references, the same split: innocent ones below, scammers' mules above.
_ID_SPACE = 10**13
_SCAM_ID_BASE = _ID_SPACE // 2
# Type allocation codes: innocent handsets and scam handsets never share an IMEI.
_INNOCENT_TAC, _SCAM_TAC = "35", "86"
# Addresses: subscribers' from carrier-grade NAT (100.64.0.0/10) or the upper half of the
# IPv6 documentation prefix 2001:db8::/32, each case's scammers' one of its own in the lower half.
_DOC_IPV6 = 0x2001_0DB8 << 96
_IPV6_HALF = 1 << 95
# Where victims met the scammer; .example is reserved, and the names on real hosts are made up.
_SCAM_URL_FORMS = (
    "https://www.facebook.com/{name}.{number}",
    "https://line.me/ti/p/~{name}{number}",
    "https://t.me/{name}_{number}",
    "https://{name}-th.example/member/{number}",
)
_SCAM_URL_NAMES = ("thaiinvestclub", "goldprofitth", "parcelcheck", "easyloanth", "jobsathome", "giftcenterth")


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
    # Operators' records on telecom-events: off keeps the feed bank transactions and reports only.
    telecom: bool = False
    telecom_background_tps: float = 20.0
    telecom_subscribers: int = 50_000

    def __post_init__(self) -> None:
        if not 1 <= self.max_chain_hops <= MAX_CHAIN_HOPS:
            raise FeedSettingsError(f"max_chain_hops must be 1..{MAX_CHAIN_HOPS}, got {self.max_chain_hops}")
        if min(self.background_tps, self.cases_per_minute, self.report_delay_s, self.telecom_background_tps) < 0:
            raise FeedSettingsError(
                "background_tps, cases_per_minute, report_delay_s and telecom_background_tps must not be negative"
            )
        if self.bad_event_every < 0:
            raise FeedSettingsError(f"bad_event_every must be 0 (never) or positive, got {self.bad_event_every}")
        if self.background_accounts < 2 or self.background_accounts > _MULE_SPACE:
            raise FeedSettingsError(f"background_accounts must be 2..{_MULE_SPACE}")
        # A victim and up to three other people a scammer contacts are distinct subscribers.
        if self.telecom_subscribers < 4 or self.telecom_subscribers > _SCAM_PHONE_BASE:
            raise FeedSettingsError(f"telecom_subscribers must be 4..{_SCAM_PHONE_BASE}")
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
    # What the victim reported besides the payment.
    scammer_phones: tuple[str, ...] = ()
    scam_urls: tuple[str, ...] = ()
    # Seen on telecom-events only (empty unless FeedSettings.telecom): burners registered to the
    # same identity as a reported number, and the people the scammer contacted who never report.
    linked_numbers: tuple[str, ...] = ()
    warned_numbers: tuple[str, ...] = ()
    victim_phone: str | None = None
    scammer_imei: str | None = None
    scammer_ips: tuple[str, ...] = ()

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
        self._telecom_rng = random.Random(f"{settings.seed}:telecom")
        self._next_telecom = math.inf
        self._telecom_count = 0
        self._telecom_records = 0
        # Case events not yet due, in emission order: (at_ms, 0 = case, case number, sequence, event).
        self._pending: list[tuple[int, int, int, int, FeedEvent]] = []

    def events_until(self, now_ms: int) -> list[FeedEvent]:
        """Every event due at or before ``now_ms`` and not returned before; the first call starts the clock."""
        if self._clock_ms is None:
            self._next_background = now_ms + self._gap_ms(self._background_rng, self.settings.background_tps)
            self._next_case = now_ms + self._gap_ms(self._arrivals_rng, self.settings.cases_per_minute / 60)
            self._next_telecom = now_ms + self._gap_ms(self._telecom_rng, self._telecom_tps)
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
        while self._next_telecom <= now_ms:
            at_ms = math.ceil(self._next_telecom)
            for side, event in enumerate(self._background_telecom_events(at_ms)):
                due.append((at_ms, 2, self._telecom_count, side, event))
            self._telecom_count += 1
            self._next_telecom += self._gap_ms(self._telecom_rng, self._telecom_tps)
        due.sort(key=lambda entry: entry[:4])
        return [entry[4] for entry in due]

    @property
    def _telecom_tps(self) -> float:
        return self.settings.telecom_background_tps if self.settings.telecom else 0.0

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

    def _background_telecom_events(self, at_ms: int) -> list[FeedEvent]:
        """A call or message (one record from each party's operator), a data session or a SIM change."""
        rng, subscribers = self._telecom_rng, self.settings.telecom_subscribers
        subscriber = rng.randrange(subscribers)
        roll = rng.random()
        if roll < 0.9:
            kind = "call" if roll < 0.6 else "sms"
            other = rng.randrange(subscribers - 1)
            other += other >= subscriber
            records = [
                (subscriber, kind, {"counterparty_msisdn": _msisdn(other)}),
                (other, kind, {"counterparty_msisdn": _msisdn(subscriber)}),
            ]
        elif roll < 0.98:
            records = [(subscriber, "data_session", {"ip": _innocent_ip(rng)})]
        elif roll < 0.99:
            records = [(subscriber, "sim_registration", {"registered_id": _registered_id(subscriber)})]
        else:
            records = [(subscriber, "sim_swap", {})]  # a new SIM for the same number, e.g. after a lost phone
        events = []
        for party, kind, fields in records:
            events.append(_innocent_event(rng, 2 * self._telecom_records, party, kind, at_ms, fields))
            self._telecom_records += 1
        return events

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
        story = _scammer_story(settings, number, start_ms, paid_at, reported_at)
        report = _victim_report(rng, number, victim, payment, reported_at, story)
        events.append(FeedEvent(VICTIM_REPORTS.name, report["report_id"].encode(), report, reported_at))
        events += story.events
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
                scammer_phones=story.phones,
                scam_urls=story.urls,
                linked_numbers=story.burners,
                warned_numbers=story.warned,
                victim_phone=story.victim_phone,
                scammer_imei=story.imei,
                scammer_ips=story.ips,
            )
        )


class _ScammerStory(NamedTuple):
    phones: tuple[str, ...]
    urls: tuple[str, ...]
    burners: tuple[str, ...] = ()
    warned: tuple[str, ...] = ()
    victim_phone: str | None = None
    imei: str | None = None
    ips: tuple[str, ...] = ()
    events: tuple[FeedEvent, ...] = ()


def _scammer_story(settings: FeedSettings, number: int, start_ms: int, paid_at: int, reported_at: int) -> _ScammerStory:
    """The scammer's numbers and pages, and, with telecom on, what the operators saw of them."""
    # Its own generator: switching telecom on or off leaves the money and the reports as they were.
    rng = random.Random(f"{settings.seed}:case:{number}:telecom")
    first_slot = number * _CASE_PHONE_SLOTS
    slots = iter(range(first_slot, first_slot + _CASE_PHONE_SLOTS))
    reported = [next(slots) for _ in range(rng.randint(1, 2))]
    urls = (_scam_url(rng, number),) if rng.random() < 0.6 else ()
    phones = tuple(_msisdn(_SCAM_PHONE_BASE + slot) for slot in reported)
    if not settings.telecom:
        return _ScammerStory(phones, urls)

    burners = [next(slots)] if rng.random() < 0.4 else []
    operators = {slot: rng.choice(TELECOM_OPERATORS) for slot in reported + burners}
    imei = _imei(_SCAM_TAC, number) if rng.random() < 0.6 else None  # one dual-SIM handset
    ip = _scam_ip(number) if rng.random() < 0.5 else None
    cell = rng.randrange(100_000)
    victim, *warned = rng.sample(range(settings.telecom_subscribers), rng.randint(1, 3) + 1)
    serials = iter(range(number * _CASE_TELECOM_SLOTS, (number + 1) * _CASE_TELECOM_SLOTS))
    events: list[FeedEvent] = []

    def record(slot: int, kind: str, at_ms: int, **fields: str) -> None:
        operator = operators[slot]
        if imei is not None:
            fields["imei"] = imei
        if kind != "sim_registration" and rng.random() < 0.5:
            fields["cell_id"] = f"{operator}-{cell:05d}"
        event_id = f"{operator}-{2 * next(serials) + 1:012d}"
        events.append(_telecom_event(rng, event_id, operator, kind, _msisdn(_SCAM_PHONE_BASE + slot), at_ms, fields))

    def contact(slot: int, person: int, kind: str, at_ms: int) -> None:
        record(slot, kind, at_ms, counterparty_msisdn=_msisdn(person))
        fields = {"counterparty_msisdn": _msisdn(_SCAM_PHONE_BASE + slot)}
        events.append(_innocent_event(rng, 2 * next(serials) + 1, person, kind, at_ms, fields))

    # Mules' identity documents register the numbers before anyone is called; a burner shares the first's.
    for slot in reported:
        at_ms = start_ms + rng.randint(0, 800)
        record(slot, "sim_registration", at_ms, registered_id=_registered_id(_SCAM_ID_BASE + slot))
    for slot in burners:
        at_ms = start_ms + rng.randint(0, 1_500)
        record(slot, "sim_registration", at_ms, registered_id=_registered_id(_SCAM_ID_BASE + reported[0]))
    contact(reported[0], victim, "call", rng.randint(start_ms + 1_000, paid_at - 500))
    # The same script on other people, some after the victim reported: they can still be warned in time.
    for person in warned:
        for _ in range(rng.randint(1, 2)):
            at_ms = rng.randint(start_ms + 1_000, reported_at + 30_000)
            contact(rng.choice(reported), person, rng.choice(("call", "sms")), at_ms)
    if ip is not None:
        for _ in range(rng.randint(1, 2)):
            record(rng.choice(reported), "data_session", rng.randint(start_ms + 500, reported_at + 30_000), ip=ip)
    return _ScammerStory(
        phones,
        urls,
        burners=tuple(_msisdn(_SCAM_PHONE_BASE + slot) for slot in burners),
        warned=tuple(_msisdn(person) for person in warned),
        victim_phone=_msisdn(victim),
        imei=imei,
        ips=(ip,) if ip is not None else (),
        events=tuple(events),
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
    rng: random.Random, number: int, victim: AccountKey, payment: JsonObject, reported_at: int, story: _ScammerStory
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
    report["scammer_phones"] = list(story.phones)
    if story.urls:
        report["scam_urls"] = list(story.urls)
    return report


def _innocent_event(
    rng: random.Random, serial: int, subscriber: int, kind: str, at_ms: int, fields: JsonObject
) -> FeedEvent:
    """An innocent subscriber's record, sometimes with the handset and the cell."""
    operator = _home_operator(subscriber)
    if rng.random() < 0.3:
        fields["imei"] = _imei(_INNOCENT_TAC, subscriber)
    if kind != "sim_registration" and rng.random() < 0.5:
        fields["cell_id"] = f"{operator}-{rng.randrange(100_000):05d}"
    return _telecom_event(rng, f"{operator}-{serial:012d}", operator, kind, _msisdn(subscriber), at_ms, fields)


def _telecom_event(
    rng: random.Random, event_id: str, operator: str, kind: str, msisdn: str, at_ms: int, fields: JsonObject
) -> FeedEvent:
    value = {
        "event_id": event_id,
        "operator": operator,  # always the home operator of the msisdn
        "kind": kind,
        "msisdn": msisdn,
        "occurred_at": _rfc3339(rng, at_ms),
        **fields,
    }
    return FeedEvent(TELECOM_EVENTS.name, msisdn.encode(), value, at_ms)


# Numbers, identity references and IMEIs are n * 3**k + offset modulo a power of ten (times 2 for
# numbers): 3**k is coprime to the modulus, so distinct n give distinct values, and the offset keeps
# the first slot of a range from looking round (+66900000000).
def _msisdn(n: int) -> str:
    permuted = (n * 129_140_163 + 73_560_981) % _PHONE_SPACE
    return f"+66{8 + permuted // 10**8}{permuted % 10**8:08d}"


def _home_operator(subscriber: int) -> str:
    return TELECOM_OPERATORS[subscriber % len(TELECOM_OPERATORS)]


def _registered_id(n: int) -> str:
    return f"{(n * 7_625_597_484_987 + 2_718_281_828_459) % _ID_SPACE:013d}"


def _imei(tac: str, n: int) -> str:
    body = f"{tac}{(n * 847_288_609_443 + 314_159_265_358) % 10**12:012d}"
    total = 0
    for index, digit in enumerate(map(int, reversed(body))):
        doubled = digit * 2 if index % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return f"{body}{-total % 10}"  # Luhn check digit, as on a real handset


def _innocent_ip(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"100.{64 + rng.randrange(64)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return str(ipaddress.IPv6Address(_DOC_IPV6 | _IPV6_HALF | rng.getrandbits(95)))


def _scam_ip(number: int) -> str:
    # An odd multiplier permutes the lower half of the prefix: one address per case, none shared.
    return str(ipaddress.IPv6Address(_DOC_IPV6 | (number * 0x9E37_79B9_7F4A_7C15 + 0x5DEE_CE66_D) % _IPV6_HALF))


def _scam_url(rng: random.Random, number: int) -> str:
    return rng.choice(_SCAM_URL_FORMS).format(name=rng.choice(_SCAM_URL_NAMES), number=number + 1)


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

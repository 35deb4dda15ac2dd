"""A seeded scam world for ``interceptor simulate``: people, merchants, gangs, and the truth about every baht.

The demo feed (``connectors.synthetic_feed``) shows the pipeline at work; this world asks how
much of the stolen money it can actually freeze when victims report as late as they really do.
It is an event-driven simulation in event time, shaped by a ``Scenario`` (``connectors.scenario``):

- **Innocent traffic.** People pay each other and merchants (a few merchants take most
  purchases), buy and sell crypto through the exchange's bank account, merchants pay suppliers
  and owners, employers pay salaries on payday. Merchants, the exchange and employers are the
  hubs a trace must not follow into. Every transfer is capped by what its payer holds.
- **Gangs.** Victims are called from a gang's numbers, then pay (some of them several times)
  into a receiving mule. Each mule keeps a commission (withdrawn in cash hours later) and passes
  the rest on after a few minutes (a few sleepers hold it for days), sometimes split over several
  next mules, for a chain of one to five hops. Chains end in a cash-out (ATM cash, goods from a
  merchant, crypto from the exchange, or the gang's own exchange account where THB becomes USDT
  and leaves on-chain), or merge into the gang's collector, which cashes out everything it holds
  every few hours.
- **Reports.** Some victims report, after the last payment, with a delay drawn to match the
  published median and its fast minority; a report names every payment by its ``txn_id``, and
  usually the number that called.

Everything the pipeline can see comes out of ``events()`` as wire messages, in event-time
order; ATM withdrawals and trades at the exchange are booked in the ledger and not published,
as no bank feed carries them. ``ledger`` (``connectors.ledger``) is the ground truth. The world
is a pure function of the scenario and the seed; it never reads a clock.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache, partial
from itertools import accumulate
from typing import Any

import orjson

from connectors.ledger import OUTSIDE, Ledger
from connectors.scenario import DelayDistribution, LogNormal, Reports, Scenario
from pipeline.topics import BANK_TRANSACTIONS, TELECOM_EVENTS, VICTIM_REPORTS, TopicSpec
from processors.records import AccountKey
from schemas.fields import format_minor_units

THB, USDT = "THB", "USDT"
THB_UNIT = 100  # minor units per baht
USDT_UNIT = 1_000_000
# 2025-11-01 00:00 Bangkok time: a fixed start keeps every run of a seed identical.
WORLD_START_MS = int(datetime(2025, 11, 1, tzinfo=timezone(timedelta(hours=7))).timestamp() * 1000)
OPERATORS = ("AIS", "TRUE", "DTAC")
SCAM_TYPES = ("call_center", "investment", "romance", "online_shopping", "loan", "job_offer")
CHAIN = "CHAIN"  # on-chain addresses, outside every institution


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One message for an input topic, due at ``at_ms`` of event time."""

    topic: TopicSpec
    value: bytes
    at_ms: int
    case: int | None = None  # set on a victim's report


@dataclass(slots=True)
class Case:
    """One victim: when they paid, whether and when they report."""

    number: int
    gang: int
    victim: AccountKey
    victim_phone: str
    caller: str
    payment_times: list[int]
    losses: list[int]  # THB minor units per payment
    reports: bool
    report_delay_ms: int
    names_caller: bool
    transfers: list[dict[str, Any]] = field(default_factory=list)  # as the report lists them

    @property
    def report_id(self) -> str:
        return f"SIM-{self.number + 1:06d}"

    @property
    def reported_at_ms(self) -> int:
        return self.payment_times[-1] + self.report_delay_ms


@dataclass(slots=True)
class Gang:
    receiving: list[AccountKey]
    layers: list[AccountKey]
    collectors: list[AccountKey]
    crypto: list[AccountKey]
    phones: list[str]
    wallet: AccountKey  # its on-chain address


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a piece of a payment is headed."""

    case: int
    gang: int
    hops_left: int
    merge: bool
    cash_out: str


def case_number(report_id: str) -> int:
    return int(report_id.removeprefix("SIM-")) - 1


class ScamWorld:
    def __init__(self, scenario: Scenario, *, start_ms: int = WORLD_START_MS) -> None:
        self.scenario = scenario
        self.start_ms = start_ms
        self.ledger = Ledger()
        self.stats: Counter[str] = Counter()
        seed = scenario.seed
        self._gang_rng = random.Random(f"{seed}:gangs")
        self._queue: list[tuple[int, int, Callable[[int], list[WireEvent]]]] = []
        self._sequence = 0
        self._accounts = 0
        self._txns = 0
        self._telecom = 0
        population = scenario.population
        build = random.Random(f"{seed}:population")
        self.people = [self._new_account(build, "person") for _ in range(population.people)]
        self.phones = [f"+668{index:08d}" for index in range(population.people)]
        self.merchants = [self._new_account(build, "merchant", bank_only=True) for _ in range(population.merchants)]
        self._merchant_weights = list(
            accumulate(1 / (rank + 1) ** population.merchant_popularity for rank in range(population.merchants))
        )
        self.employers = [self._new_account(build, "employer", bank_only=True) for _ in range(population.employers)]
        self.exchange = ("bank", population.banks[0], f"{population.exchange}-CLIENT-FUNDS")
        self.gangs = [self._new_gang(build, number) for number in range(scenario.gangs.count)]
        self._collector_gang = {account: n for n, gang in enumerate(self.gangs) for account in gang.collectors}
        self.cases = self._plan_cases(random.Random(f"{seed}:cases"))
        last_report = max((case.reported_at_ms for case in self.cases if case.reports), default=start_ms)
        self.end_ms = max(start_ms + scenario.span_ms, last_report + 60_000)
        self._open_accounts(build)
        self._schedule_background(seed)
        self._schedule_gangs()

    # -- what the driver uses --------------------------------------------------------------------

    def events(self) -> Iterator[WireEvent]:
        """Every wire message, in event-time order, booking each move in the ledger as it happens."""
        while self._queue:
            at_ms, _, action = heapq.heappop(self._queue)
            if at_ms > self.end_ms:
                break
            for event in action(at_ms):
                self.stats[event.topic.name] += 1
                yield event

    @property
    def gang_phones(self) -> frozenset[str]:
        return frozenset(phone for gang in self.gangs for phone in gang.phones)

    # -- the population --------------------------------------------------------------------------

    def _new_account(self, rng: random.Random, role: str, *, bank_only: bool = False) -> AccountKey:
        self._accounts += 1
        # 3**20 is coprime to 10**10: distinct serials give distinct, random-looking numbers.
        number = f"{(self._accounts * 3_486_784_401 + 1_234_567) % 10**10:010d}"
        population = self.scenario.population
        if not bank_only and rng.random() < population.ewallet_share:
            account = ("ewallet", population.ewallet, number)
        else:
            account = ("bank", rng.choice(population.banks), number)
        self.ledger.roles[account] = role  # opened with money later, once the cases are planned
        return account

    def _new_gang(self, rng: random.Random, number: int) -> Gang:
        gangs, exchange = self.scenario.gangs, self.scenario.population.exchange

        def mules(count: int) -> list[AccountKey]:
            return [self._new_account(rng, "mule") for _ in range(count)]

        crypto = []
        for _ in range(gangs.crypto_accounts):
            self._accounts += 1
            crypto.append(("crypto", exchange, f"U{self._accounts:09d}"))
        return Gang(
            receiving=mules(gangs.receiving_mules),
            layers=mules(gangs.layer_mules),
            collectors=[self._new_account(rng, "collector", bank_only=True) for _ in range(gangs.collectors)],
            crypto=crypto,
            phones=[f"+669{number:02d}{index:06d}" for index in range(gangs.numbers_per_gang)],
            wallet=("crypto", CHAIN, f"0x{number:04x}{rng.getrandbits(144):036x}"),
        )

    def _open_accounts(self, rng: random.Random) -> None:
        population, background, start = self.scenario.population, self.scenario.background, self.start_ms
        need: dict[AccountKey, int] = {}
        for case in self.cases:
            need[case.victim] = need.get(case.victim, 0) + sum(case.losses)
        for person in self.people:
            own = _baht(_draw(rng, population.opening_balance_thb))
            self.ledger.open(person, "person", THB, max(own, need.get(person, 0) * 11 // 10), start)
        for merchant in self.merchants:
            self.ledger.open(merchant, "merchant", THB, _baht(50_000 * math.exp(rng.gauss(0, 1))), start)
        paydays = math.ceil(self.scenario.span_ms / max(1, _ms(background.payday_every))) + 1
        self._staff: dict[AccountKey, list[AccountKey]] = {}
        for employer in self.employers:
            size = min(len(self.people), max(1, round(_draw(rng, population.employees_per_employer))))
            self._staff[employer] = rng.sample(self.people, size)
            payroll = _baht(population.salary_thb.median) * size * paydays * 2
            self.ledger.open(employer, "employer", THB, payroll, start)
        self.ledger.open(self.exchange, "exchange", THB, _baht(100_000_000), start)
        for gang in self.gangs:
            for mule in gang.receiving + gang.layers:
                self.ledger.open(mule, "mule", THB, _baht(300 * math.exp(rng.gauss(0, 1))), start)
            for account in gang.collectors:
                self.ledger.open(account, "collector", THB, 0, start)
            for account in gang.crypto:
                self.ledger.open(account, "gang_crypto", THB, 0, start)
            self.ledger.open(gang.wallet, OUTSIDE, USDT, 0, start)

    # -- cases -----------------------------------------------------------------------------------

    def _plan_cases(self, rng: random.Random) -> list[Case]:
        scenario = self.scenario
        gangs, reports = scenario.gangs, scenario.reports
        per_ms = gangs.victims_per_day / 86_400_000
        attack_end = self.start_ms + int(scenario.attack_days * 86_400_000)
        slow_median_ms = _slow_median_ms(reports)
        cases: list[Case] = []
        at = self.start_ms + 3_600_000 + rng.expovariate(per_ms)  # the first hour: gangs register their numbers
        victims = list(range(len(self.people)))
        rng.shuffle(victims)
        while at < attack_end:
            number = len(cases)
            gang = rng.randrange(gangs.count)
            payments = 1
            while payments < gangs.max_payments and rng.random() < gangs.extra_payments:
                payments += 1
            first = int(at)
            spread = _ms(gangs.payments_spread)
            times = sorted([first] + [first + rng.randrange(max(1, spread)) for _ in range(payments - 1)])
            person = victims[number % len(victims)]
            delay = _report_delay_ms(rng, reports, slow_median_ms)
            cases.append(
                Case(
                    number=number,
                    gang=gang,
                    victim=self.people[person],
                    victim_phone=self.phones[person],
                    caller=rng.choice(self.gangs[gang].phones),
                    payment_times=times,
                    losses=[max(100, _baht(_draw(rng, gangs.loss_thb))) for _ in times],
                    reports=rng.random() < reports.share,
                    report_delay_ms=delay,
                    names_caller=rng.random() < reports.phone_share,
                )
            )
            at += rng.expovariate(per_ms)
        return cases

    def _schedule_gangs(self) -> None:
        rng = random.Random(f"{self.scenario.seed}:telecom-gangs")
        gangs = self.scenario.gangs
        for gang in self.gangs:
            for phone in gang.phones:
                registered = f"ID{rng.getrandbits(40):013d}"[:15]
                self._at(self.start_ms + rng.randrange(3_000_000), partial(self._registration, phone, registered))
            for collector in gang.collectors:
                self._at(
                    self.start_ms + rng.randrange(max(1, _ms(gangs.collector_sweep_every))),
                    partial(self._sweep, collector),
                )
        for case in self.cases:
            for _ in range(gangs.calls_per_victim):
                at = case.payment_times[0] - rng.randrange(60_000, 3_600_000)
                self._at(at, partial(self._call, case.caller, case.victim_phone))
            for index, (at, loss) in enumerate(zip(case.payment_times, case.losses, strict=True)):
                self._at(at, partial(self._pay, case, index, loss))
            if case.reports:
                self._at(case.reported_at_ms, partial(self._report, case))

    def _pay(self, case: Case, index: int, loss: int, at: int) -> list[WireEvent]:
        gangs, rng = self.scenario.gangs, self._gang_rng
        mule = rng.choice(self.gangs[case.gang].receiving)
        sent = self._transfer(case.victim, mule, THB, loss, at, theft_case=case.number)
        if sent is None:
            return []
        event, value = sent
        case.transfers.append(
            {
                "from_account": value["from_account"],
                "to_account": value["to_account"],
                "amount": value["amount"],
                "currency": THB,
                "sent_at": value["executed_at"],
                "txn_id": value["txn_id"],
            }
        )
        route = _Route(
            case.number,
            case.gang,
            hops_left=_weighted(rng, gangs.chain_hops),
            merge=rng.random() < gangs.merge_share,
            cash_out=_weighted(rng, gangs.cash_out),
        )
        self._arrived(mule, int(value["_moved"]), route, at)
        return [event]

    def _arrived(self, account: AccountKey, amount: int, route: _Route, at: int) -> None:
        gangs, rng = self.scenario.gangs, self._gang_rng
        if route.hops_left > 0:
            sleeps = rng.random() < gangs.sleeper_share
            dwell = _delay_ms(rng, gangs.sleeper_delay if sleeps else gangs.forward_delay)
            self._at(at + dwell, partial(self._forward, account, amount, route))
        elif self.ledger.roles[account] != "collector":  # a collector's sweep takes it from here
            self._at(at + _delay_ms(rng, gangs.cash_out_delay), partial(self._cash_out, account, amount, route))

    def _forward(self, account: AccountKey, amount: int, route: _Route, at: int) -> list[WireEvent]:
        gangs, rng, gang = self.scenario.gangs, self._gang_rng, self.gangs[route.gang]
        keep = _whole_baht(amount * gangs.commission)
        onward = amount - keep
        parts = [onward]
        if onward >= 2 * THB_UNIT * 100 and rng.random() < gangs.split_share:
            ways = rng.randint(2, gangs.max_split)
            cuts = sorted(_whole_baht(onward * rng.random()) for _ in range(ways - 1))
            parts = [b - a for a, b in zip([0, *cuts], [*cuts, onward], strict=True) if b > a]
        events = []
        nxt = _Route(route.case, route.gang, route.hops_left - 1, route.merge, route.cash_out)
        for part in parts:
            final = nxt.hops_left == 0 and route.merge
            target = rng.choice(gang.collectors if final else [m for m in gang.layers if m != account])
            sent = self._transfer(account, target, THB, part, at, case=route.case)
            if sent is not None:
                events.append(sent[0])
                self._arrived(target, int(sent[1]["_moved"]), nxt, at)
        if keep:
            later = at + _delay_ms(rng, gangs.commission_withdrawal)
            self._at(later, partial(self._withdraw, account, keep, route.case))
        return events

    def _cash_out(self, account: AccountKey, amount: int, route: _Route, at: int) -> list[WireEvent]:
        rng, gang = self._gang_rng, self.gangs[route.gang]
        match route.cash_out:
            case "atm":
                return self._withdraw(account, amount, route.case, at)
            case "merchant":
                target = rng.choice(self.merchants)  # gold shops and electronics: any merchant will do
            case "exchange":
                target = self.exchange
            case _:
                target = rng.choice(gang.crypto)
                self._at(
                    at + _delay_ms(rng, self.scenario.gangs.conversion_delay), partial(self._convert, target, gang)
                )
        sent = self._transfer(account, target, THB, amount, at, case=route.case)
        return [sent[0]] if sent is not None else []

    def _withdraw(self, account: AccountKey, amount: int, case: int, at: int) -> list[WireEvent]:
        on_feed = self.scenario.population.withdrawals_on_feed
        moved = self.ledger.withdraw(account, THB, amount, at, case=case if case >= 0 else None, on_feed=on_feed)
        if not moved:
            return []
        if not on_feed:
            self.stats["atm withdrawals (off the feed)"] += 1
            return []
        self.stats["atm withdrawals (on the feed)"] += 1
        txn_id = self._next_txn_id(account)
        atm = ("cash", account[1], f"ATM-{self._txns % 997:04d}")
        return [WireEvent(BANK_TRANSACTIONS, orjson.dumps(_feed_message(txn_id, account, atm, THB, moved, at)), at)]

    def _sweep(self, collector: AccountKey, at: int) -> list[WireEvent]:
        gangs, rng = self.scenario.gangs, self._gang_rng
        gang = self._collector_gang[collector]
        events: list[WireEvent] = []
        held = self.ledger.balance(collector, THB)
        if held >= THB_UNIT:
            ways = rng.randint(1, 3)
            cuts = sorted(_whole_baht(held * rng.random()) for _ in range(ways - 1))
            for a, b in zip([0, *cuts], [*cuts, held], strict=True):
                if b > a:
                    route = _Route(-1, gang, 0, False, _weighted(rng, gangs.cash_out))
                    events += self._cash_out(collector, b - a, route, at)
        every = _ms(gangs.collector_sweep_every)
        self._at(at + max(60_000, int(every * rng.uniform(0.5, 1.5))), partial(self._sweep, collector))
        return events

    def _convert(self, account: AccountKey, gang: Gang, at: int) -> list[WireEvent]:
        rate = self.scenario.gangs.usdt_rate_thb
        if self.ledger.convert(account, THB, USDT, USDT_UNIT / (rate * THB_UNIT), at):
            self.stats["trades at the exchange (off the feed)"] += 1
            later = at + _delay_ms(self._gang_rng, self.scenario.gangs.chain_withdrawal_delay)
            self._at(later, partial(self._chain_withdrawal, account, gang))
        return []

    def _chain_withdrawal(self, account: AccountKey, gang: Gang, at: int) -> list[WireEvent]:
        sent = self._transfer(account, gang.wallet, USDT, self.ledger.balance(account, USDT), at)
        return [sent[0]] if sent is not None else []

    def _report(self, case: Case, at: int) -> list[WireEvent]:
        if not case.transfers:
            return []
        rng = random.Random(f"{self.scenario.seed}:report:{case.number}")
        report = {
            "report_id": case.report_id,
            "reported_at": _iso(at),
            "victim_id": f"V{case.number + 1:07d}",
            "country": "TH",
            "scam_type": rng.choice(SCAM_TYPES),
            "transfers": case.transfers,
            "scammer_phones": [case.caller] if case.names_caller else [],
        }
        return [WireEvent(VICTIM_REPORTS, orjson.dumps(report), at, case=case.number)]

    # -- telecom ---------------------------------------------------------------------------------

    def _registration(self, phone: str, registered_id: str, at: int) -> list[WireEvent]:
        return [self._telecom_event(phone, "sim_registration", at, registered_id=registered_id)]

    def _call(self, caller: str, callee: str, at: int) -> list[WireEvent]:
        return [self._telecom_event(caller, "call", at, counterparty_msisdn=callee)]

    def _telecom_event(self, msisdn: str, kind: str, at: int, **fields: str) -> WireEvent:
        self._telecom += 1
        operator = OPERATORS[int(msisdn[-4:]) % len(OPERATORS)]
        value = {"event_id": f"{operator}-{self._telecom:012d}", "operator": operator, "kind": kind,
                 "msisdn": msisdn, "occurred_at": _iso(at), **fields}  # fmt: skip
        return WireEvent(TELECOM_EVENTS, orjson.dumps(value), at)

    # -- innocent traffic ------------------------------------------------------------------------

    def _schedule_background(self, seed: int) -> None:
        background = self.scenario.background
        streams: list[tuple[str, float, Callable[[random.Random, int], list[WireEvent]]]] = [
            ("p2p", background.p2p_per_hour, self._p2p),
            ("purchases", background.purchases_per_hour, self._purchase),
            ("exchange", background.exchange_per_hour, self._crypto_trade),
            ("payouts", background.merchant_payouts_per_hour, self._merchant_payout),
            ("calls", background.telecom_calls_per_hour, self._background_call),
        ]
        for name, per_hour, make in streams:
            if per_hour > 0:
                rng = random.Random(f"{seed}:background:{name}")
                first = self.start_ms + int(rng.expovariate(per_hour / 3_600_000))
                self._at(first, partial(self._tick, rng, per_hour, make))
        rng = random.Random(f"{seed}:background:payroll")
        every = _ms(background.payday_every)
        for employer in self.employers:
            self._at(self.start_ms + rng.randrange(max(1, every)), partial(self._payday, rng, employer))

    def _tick(
        self, rng: random.Random, per_hour: float, make: Callable[[random.Random, int], list[WireEvent]], at: int
    ) -> list[WireEvent]:
        self._at(at + 1 + int(rng.expovariate(per_hour / 3_600_000)), partial(self._tick, rng, per_hour, make))
        return make(rng, at)

    def _p2p(self, rng: random.Random, at: int) -> list[WireEvent]:
        payer, payee = rng.sample(self.people, 2)
        return self._background_transfer(payer, payee, _draw(rng, self.scenario.background.p2p_thb), at)

    def _purchase(self, rng: random.Random, at: int) -> list[WireEvent]:
        merchant = rng.choices(self.merchants, cum_weights=self._merchant_weights)[0]
        return self._background_transfer(
            rng.choice(self.people), merchant, _draw(rng, self.scenario.background.purchase_thb), at
        )

    def _crypto_trade(self, rng: random.Random, at: int) -> list[WireEvent]:
        person, amount = rng.choice(self.people), _draw(rng, self.scenario.background.exchange_thb)
        if rng.random() < 0.5:
            return self._background_transfer(person, self.exchange, amount, at)
        return self._background_transfer(self.exchange, person, amount, at)

    def _merchant_payout(self, rng: random.Random, at: int) -> list[WireEvent]:
        merchant = rng.choices(self.merchants, cum_weights=self._merchant_weights)[0]
        payee = rng.choice(self.people) if rng.random() < 0.5 else rng.choice(self.merchants)
        if payee == merchant:
            return []
        share = self.scenario.background.merchant_payout_share
        return self._background_transfer(merchant, payee, self.ledger.balance(merchant, THB) * share / THB_UNIT, at)

    def _payday(self, rng: random.Random, employer: AccountKey, at: int) -> list[WireEvent]:
        events = []
        for offset, person in enumerate(self._staff[employer]):
            salary = _draw(rng, self.scenario.population.salary_thb)
            events += self._background_transfer(employer, person, salary, at + offset)
        self._at(at + _ms(self.scenario.background.payday_every), partial(self._payday, rng, employer))
        return events

    def _background_call(self, rng: random.Random, at: int) -> list[WireEvent]:
        caller, callee = rng.sample(self.phones, 2)
        return self._call(caller, callee, at)

    def _background_transfer(self, payer: AccountKey, payee: AccountKey, baht: float, at: int) -> list[WireEvent]:
        sent = self._transfer(payer, payee, THB, int(baht * THB_UNIT), at)
        if sent is None:
            return []
        self.stats["background transfers"] += 1
        return [sent[0]]

    # -- plumbing --------------------------------------------------------------------------------

    def _at(self, at_ms: int, action: Callable[[int], list[WireEvent]]) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (at_ms, self._sequence, action))

    def _transfer(
        self,
        source: AccountKey,
        target: AccountKey,
        currency: str,
        amount: int,
        at: int,
        *,
        theft_case: int | None = None,
        case: int | None = None,
    ) -> tuple[WireEvent, dict[str, Any]] | None:
        """Book a transfer and build its bank-feed message; None when the payer holds nothing to send."""
        txn_id = self._next_txn_id(source)
        passing_on = case if case is not None and case >= 0 else None
        moved = self.ledger.transfer(
            txn_id, source, target, currency, amount, at, theft_case=theft_case, case=passing_on
        )
        if not moved:
            return None
        value = _feed_message(txn_id, source, target, currency, moved, at)
        event = WireEvent(BANK_TRANSACTIONS, orjson.dumps(value), at)
        return event, {**value, "_moved": moved}

    def _next_txn_id(self, source: AccountKey) -> str:
        self._txns += 1
        return f"{source[1]}-{self._txns:012d}"


def _feed_message(
    txn_id: str, source: AccountKey, target: AccountKey, currency: str, moved: int, at: int
) -> dict[str, Any]:
    """A bank-transactions message, as the source's bank publishes it."""
    return {
        "txn_id": txn_id,
        "from_account": _ref(source),
        "to_account": _ref(target),
        "amount": format_minor_units(moved, currency),
        "currency": currency,
        "executed_at": _iso(at),
    }


def _slow_median_ms(reports: Reports) -> float:
    """The median of the slow reporters' delays that puts the median of all reports at ``median_delay``.

    Delays are a mix, ``F(x) = fast_share * F_fast(x) + (1 - fast_share) * F_slow(x)``, cut at
    ``max_delay`` (later draws are drawn again), so the median ``m`` solves ``F(m) = F(max_delay) / 2``.
    ``F`` falls as the slow median grows: bisect on its logarithm.
    """
    normal = statistics.NormalDist()
    m, limit = reports.median_delay.total_seconds() * 1000, reports.max_delay.total_seconds() * 1000
    fast = reports.fast_delay

    def below(x: float, slow_median: float) -> float:
        fast_below = normal.cdf(math.log(x / (fast.median.total_seconds() * 1000)) / fast.sigma) if fast.sigma else 1.0
        slow_below = normal.cdf(math.log(x / slow_median) / reports.slow_sigma)
        return reports.fast_share * fast_below + (1 - reports.fast_share) * slow_below

    def too_early(slow_median: float) -> bool:
        return below(m, slow_median) > below(limit, slow_median) / 2

    # Between these ends the median moves one way (far beyond max_delay only the fast ones would be left).
    low, high = math.log(m / 100), math.log(limit)
    if not too_early(math.exp(low)) or too_early(math.exp(high)):
        raise ValueError("reports: no slow median gives this median_delay with this fast_share and max_delay")
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if too_early(math.exp(middle)) else (low, middle)
    return math.exp(low)


def _report_delay_ms(rng: random.Random, reports: Reports, slow_median_ms: float) -> int:
    limit = _ms(reports.max_delay)
    while True:
        if rng.random() < reports.fast_share:
            delay = _delay_ms(rng, reports.fast_delay)
        else:
            delay = int(slow_median_ms * math.exp(rng.gauss(0, reports.slow_sigma)))
        if delay <= limit:
            return max(1_000, delay)


def _draw(rng: random.Random, distribution: LogNormal) -> float:
    return distribution.median * math.exp(rng.gauss(0, distribution.sigma))


def _delay_ms(rng: random.Random, distribution: DelayDistribution) -> int:
    return max(1_000, int(distribution.median.total_seconds() * 1000 * math.exp(rng.gauss(0, distribution.sigma))))


def _weighted(rng: random.Random, weights: dict[Any, float]) -> Any:
    keys = sorted(weights)
    return rng.choices(keys, weights=[weights[key] for key in keys])[0]


def _ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)


def _baht(baht: float) -> int:
    return int(baht) * THB_UNIT


def _whole_baht(minor: float) -> int:
    return int(minor) // THB_UNIT * THB_UNIT


def _ref(account: AccountKey) -> dict[str, str]:
    kind, institution, number = account
    return {"institution": institution, "account": number, "kind": kind}


def _iso(at_ms: int) -> str:
    return f"{_second(at_ms // 1000)}.{at_ms % 1000:03d}Z"


@lru_cache(maxsize=4096)
def _second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")

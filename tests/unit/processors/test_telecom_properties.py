"""Properties of the telecom correlation that must hold for any input and any arrival order.

Small random worlds (a handful of numbers sharing a few identity documents, handsets
and IPs, events spread around the reports' windows) are fed in a random order, with
redeliveries and ``decide()`` at random points. The latest active suspensions and
warnings, and the payment-proxy links, must be exactly those of feeding everything at
once; anything else left in the action book must have been released.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.action_book import ActionBook
from processors.records import AccountKey, Report, TelecomEvent
from processors.telecom import (
    DIRECT_PRIORITY,
    LINK_PRIORITY,
    AccountLink,
    SuspensionOrder,
    TelecomCorrelation,
    TelecomSettings,
    WarningOrder,
)

NUMBERS = [f"+6681000000{n}" for n in range(5)]
OPERATORS = ["AIS", "TRUE", "DTAC"]
DOCUMENTS = ["ID-1", "ID-2"]
HANDSETS = ["356789012345601", "356789012345602"]
ADDRESSES = ["192.0.2.1", "192.0.2.2"]
URLS = ["https://fb.me/a", "https://scam.example/b"]
# Against generated times of 0..60 and reports at 15..55, so windows cut on both sides.
SETTINGS = TelecomSettings(window_back_ms=30, window_forward_ms=10)

Item = Report | TelecomEvent | tuple[AccountKey, ...]


@dataclass(frozen=True)
class World:
    reports: list[Report]
    events: list[TelecomEvent]
    accounts: list[AccountKey]


times = st.integers(min_value=0, max_value=60)


@st.composite
def events(draw: st.DrawFn, event_id: str) -> TelecomEvent:
    kind = draw(st.sampled_from(["call", "sms", "sim_registration", "sim_swap", "data_session"]))
    number = draw(st.sampled_from(NUMBERS))
    imei = draw(st.none() | st.sampled_from(HANDSETS))
    return TelecomEvent(
        event_id=event_id,
        operator=draw(st.sampled_from(OPERATORS)),
        kind=kind,
        msisdn=number,
        at_ms=draw(times),
        counterparty_msisdn=draw(st.sampled_from(NUMBERS)) if kind in ("call", "sms") else None,
        registered_id=draw(st.sampled_from(DOCUMENTS)) if kind == "sim_registration" else None,
        imei=imei,
        ip=draw(st.sampled_from(ADDRESSES)) if kind == "data_session" else None,
    )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    reports = [
        Report(
            f"r{n}",
            draw(st.integers(min_value=15, max_value=55)),
            1_000 + n,
            f"victim-{n}",
            "TH",
            "call-centre",
            (),
            tuple(draw(st.lists(st.sampled_from(NUMBERS), max_size=2, unique=True))),
            tuple(draw(st.lists(st.sampled_from(URLS), max_size=1))),
        )
        for n in range(draw(st.integers(min_value=1, max_value=3)))
    ]
    feed = [draw(events(f"e{n}")) for n in range(draw(st.integers(min_value=0, max_value=16)))]
    accounts = [("bank", "KBANK", "0" + number[3:]) for number in draw(st.lists(st.sampled_from(NUMBERS), max_size=3))]
    return World(reports, feed, [*accounts, ("bank", "KBANK", "not-a-number")])


@dataclass
class Outcome:
    suspensions: dict[str, Hashable]
    warnings: dict[str, Hashable]
    links: dict[AccountKey, AccountLink]


def active(book: ActionBook, kind: str) -> dict[str, Hashable]:
    return {order.action_id: order.fingerprint for order in book if order.kind == kind and order.status == "active"}


def released(book: ActionBook, kind: str) -> set[str]:
    return {order.action_id for order in book if order.kind == kind and order.status == "released"}


def everyone(book: ActionBook, kind: str) -> set[str]:
    return {order.action_id for order in book if order.kind == kind}


def run(items: Sequence[Item], decide_after: Sequence[bool]) -> tuple[TelecomCorrelation, ActionBook, Outcome]:
    correlation = TelecomCorrelation(SETTINGS)
    book = ActionBook()
    links: dict[AccountKey, AccountLink] = {}
    versions: dict[str, int] = {}

    def decide() -> None:
        decisions = correlation.decide(now_ms=0)
        for order in book.settle([*decisions.suspensions, *decisions.warnings], now_ms=0):
            assert order.version == versions.get(order.action_id, 0) + 1
            versions[order.action_id] = order.version
        for account, link in decisions.links.items():
            if link is None:
                assert account in links
                del links[account]
            else:
                links[account] = link

    for item, then_decide in zip(items, decide_after, strict=True):
        if isinstance(item, Report):
            correlation.add_report(item)
        elif isinstance(item, TelecomEvent):
            correlation.add_event(item)
        else:
            correlation.add_accounts(item)
        if then_decide:
            decide()
    decide()
    return correlation, book, Outcome(active(book, "suspension"), active(book, "warning"), links)


def everything(world: World) -> list[Item]:
    return [*world.reports, *world.events, tuple(world.accounts)]


@settings(max_examples=100, deadline=None)
@given(world=worlds(), data=st.data())
def test_any_arrival_order_ends_where_everything_at_once_does(world: World, data: st.DataObject) -> None:
    items: list[Item] = [*world.reports, *world.events, *((account,) for account in world.accounts)]
    # Redeliveries: events again, reports again with a later broker receipt, accounts seen again.
    items += data.draw(st.lists(st.sampled_from(world.events), max_size=3)) if world.events else []
    items += [
        Report(
            r.report_id,
            r.reported_at_ms,
            r.received_at_ms + 7,
            r.victim_id,
            r.country,
            r.scam_type,
            (),
            r.scammer_phones,
            r.scam_urls,
        )
        for r in data.draw(st.lists(st.sampled_from(world.reports), max_size=2))
    ]
    items += [(account,) for account in data.draw(st.lists(st.sampled_from(world.accounts), max_size=2))]
    arrivals = data.draw(st.permutations(items))
    decide_after = data.draw(st.lists(st.booleans(), min_size=len(arrivals), max_size=len(arrivals)))

    shuffled, book, outcome = run(arrivals, decide_after)
    _, _, at_once = run(everything(world), [False] * len(everything(world)))

    assert outcome.suspensions == at_once.suspensions
    assert outcome.warnings == at_once.warnings
    assert outcome.links == at_once.links
    # Whatever else an intermediate decide() issued has been withdrawn since.
    assert everyone(book, "suspension") == set(outcome.suspensions) | released(book, "suspension")
    assert everyone(book, "warning") == set(outcome.warnings) | released(book, "warning")

    # Replaying everything once more issues nothing.
    for item in everything(world):
        if isinstance(item, Report):
            assert not shuffled.add_report(item)
        elif isinstance(item, TelecomEvent):
            assert not shuffled.add_event(item)
        else:
            shuffled.add_accounts(item)
    decisions = shuffled.decide(now_ms=1)
    assert book.settle([*decisions.suspensions, *decisions.warnings], now_ms=1) == []
    assert decisions.links == {}


@settings(max_examples=50, deadline=None)
@given(world=worlds())
def test_named_numbers_outrank_linked_ones_and_suspects_are_never_warned(world: World) -> None:
    _, book, _ = run(everything(world), [False] * len(everything(world)))
    orders = [o for o in book if isinstance(o, SuspensionOrder) and o.status == "active"]
    named = {phone for report in world.reports for phone in report.scammer_phones}
    numbers = [o for o in orders if o.target_type == "msisdn"]
    assert {o.target for o in numbers} >= named
    for order in numbers:
        if order.target in named:
            assert order.priority >= DIRECT_PRIORITY
        else:
            assert order.priority <= max(LINK_PRIORITY.values())
            assert order.reasons[0].startswith(("registered to", "used the same handset", "shared IP"))
    suspects = {o.target for o in numbers}
    warned = [o for o in book if isinstance(o, WarningOrder) and o.status == "active"]
    assert not suspects & {w.msisdn for w in warned}
    for warning in warned:
        assert warning.scammer_msisdn in suspects

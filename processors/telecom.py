"""Join victim reports with operators' telecom events: suspend numbers, handsets, IPs and pages, warn victims.

The rules:

* **Window.** A report uses a telecom event only if
  ``reported_at - window_back <= occurred_at <= reported_at + window_forward`` (both ends
  inclusive; 30 days back and 24 hours forward by default). This bounds *every* event a
  report uses, on both sides of a link.
* **Direct suspects** are the report's ``scammer_phones``: an ``msisdn`` suspension at the
  number's operator, the ``operator`` of the latest in-window event whose ``msisdn`` is the
  number (ties by event id; none -> the default addressee). Evidence: every in-window event
  involving the number, as subscriber or as counterparty. In-window ``sim_swap`` events of
  the number add a reason each.
* **Linked numbers**, one level from a direct suspect and never further (a linked number's
  own registrations, handsets and IPs link nothing):

  - same identity document: both numbers have an in-window ``sim_registration`` with the
    same ``registered_id`` ("registered to the same identity document as +66...");
  - same handset: both numbers have an in-window event on the same ``imei`` ("used the same
    handset (IMEI ...) as +66...");
  - same IP: both numbers have an in-window ``data_session`` on the same ``ip`` ("shared IP
    ... in a data session with +66...").

  A linked number gets an ``msisdn`` suspension at its own operator (same rule as above, else
  the default addressee), at a lower priority, with the link as its reason and the events on
  both sides of the link as evidence. A number that some report names directly is a direct
  suspect whatever links it also has (the links are kept as extra reasons).
* **Handsets and IPs of direct suspects**: every ``imei`` on an in-window event of a direct
  suspect becomes an ``imei`` suspension, and every ``ip`` of an in-window ``data_session`` of
  a direct suspect an ``ip`` suspension, each addressed to the operator of the latest such event.
* **Scam URLs** become ``url`` takedowns addressed to the platform hosting them
  (``processors.takedowns.platform_for_url``; unknown hosts -> the default addressee).
* **Victim warnings**: the other party of every in-window ``call`` or ``sms`` where a suspect
  (direct or linked) is the ``msisdn`` or the ``counterparty_msisdn``, unless that party is a
  suspect (direct or linked) of *any* report. One warning per warned number: the most recent
  contact (latest ``occurred_at``, then event id) gives ``scammer_msisdn`` and
  ``last_contact_at``; ``report_ids`` are every report that reached it; the operator is the one
  of the warned number's latest event as subscriber, at any time the index still remembers (see
  *Expiry*), else the default addressee.
* **Several reports** behind one target merge into one order: ``report_ids`` are every report
  naming or linking it (sorted); only reports *naming* it count as corroboration.
* **Payment proxies**: an account is tied to a directly reported number when its account
  number, separators (space, ``-``, ``.``, brackets) removed, is all ASCII digits and equals the
  number's digits (``+66812345678`` -> ``66812345678``) or, for ``+66`` numbers only, ``0`` plus
  the national number (``0812345678``). The link lists every report naming the number.

Priorities (0-100; escalation adds 10 per level, capped at 100):

================================  ==================================================
target                            priority
================================  ==================================================
msisdn, named by a report         85, +5 per further report naming it, at most 100
url, named by a report            70, +5 per further report naming it, at most 80
imei of a named number            65
msisdn linked by identity doc     60
msisdn linked by handset          55
msisdn linked by shared IP        45
ip of a named number              35
================================  ==================================================

Directly reported targets therefore always rank above linked and derived ones.

Order independence and idempotency, as in the money trail: events are indexed (by
subscriber, counterparty, ``registered_id``, ``imei`` and ``ip``) and deduplicated by event
id, and what a report implies is a pure function of the report and those indexes. A report
is recomputed when it arrives or when an event arrives under a key it read; the orders of
every target and warned number a recomputation touched are then rebuilt from all the reports
behind them. A target or warning no longer implied by anything (a corrected report; a warned
number that turned out a suspect) is withdrawn. ``decide`` keeps no versions: the action book
(``processors/action_book.py``) issues a new version only when the fingerprint changes, and a
withdrawn action is re-issued once with status ``released``, priority 0 and no reports or
evidence. Fingerprints hold ``evidence_digest``, not the report and event ids themselves: the
wire lists only the first ``max_listed_ids`` of them, and a version restored from it must
still match the full content.
An event id seen before is ignored, even if its content differs (first delivery wins).

Expiry, on the events' own clock (the latest ``occurred_at`` indexed): an event is forgotten once
it is older than ``window_back + window_forward`` before that clock *and* before the start of the
window of every report still held, so no held report loses an event it uses. A report arriving
later whose window reaches further back does not see forgotten events (as a late report does not
see evicted bank transfers), and a redelivered forgotten event is ignored. A number's latest
operator outlives its events by ``operator_memory`` (the telecom-events topic's retention, so a
replay after a restart finds the same one). Expired reports are dropped with everything they
imply (``forget_reports``), recomputing nothing: a target another held report still implies keeps
its action, and its next version, if anything changes it, no longer lists the expired reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from processors.action_book import Withdrawal, with_escalation
from processors.records import AccountKey, Report, TelecomEvent
from processors.takedowns import platform_for_url

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

DIRECT_PRIORITY = 85
DIRECT_MAX_PRIORITY = 100
URL_PRIORITY = 70
URL_MAX_PRIORITY = 80
CORROBORATION_STEP = 5  # per further report naming the same number or page
IMEI_PRIORITY = 65
LINK_PRIORITY: dict[str, int] = {"identity": 60, "handset": 55, "ip": 45}
IP_PRIORITY = 35

Target = tuple[str, str]  # (target_type, target)
# Fingerprints: what an addressee acts on; a change in any of it is a new version.
# (status, target_type, target, addressee, priority, evidence_digest, escalation)
SuspensionFingerprint = tuple[str, str, str, str, int, str, int]
# (status, msisdn, operator, scammer_msisdn, last_contact_at_ms, evidence_digest)
WarningFingerprint = tuple[str, str, str, str, int, str]
IndexKey = tuple[str, str]  # ("msisdn" | "registered_id" | "imei" | "ip", value)
Stamp = tuple[int, str, str]  # (at_ms, event_id, operator): the latest is the greatest
Contact = tuple[int, str, str]  # (at_ms, event_id, scammer msisdn): the most recent is the greatest
_Key = TypeVar("_Key", bound=Hashable)
BEFORE_ANY_EVENT = -(1 << 62)
RELEASE_REASON = "no report implicates this target any more (a report was corrected): lift the suspension"


@dataclass(frozen=True)
class TelecomSettings:
    window_back_ms: int = 30 * DAY_MS
    window_forward_ms: int = 24 * HOUR_MS
    default_addressee: str = "war-room"
    operator_memory_ms: int = 35 * DAY_MS  # a number's latest operator, after its events are forgotten


@dataclass(frozen=True, slots=True)
class SuspensionOrder:
    action_id: str
    version: int
    target_type: str
    target: str
    addressee: str
    priority: int
    reasons: tuple[str, ...]
    report_ids: tuple[str, ...]
    evidence: tuple[str, ...]  # telecom event ids
    issued_at_ms: int
    report_received_at_ms: int
    evidence_digest: str  # suspension_digest(report_ids, evidence), of the full lists even when restored from cut ones
    escalation: int = 0
    base_priority: int = 0  # before escalation; not on the wire
    status: str = "active"

    kind = "suspension"

    @property
    def fingerprint(self) -> SuspensionFingerprint:
        return (
            self.status,
            self.target_type,
            self.target,
            self.addressee,
            self.priority,
            self.evidence_digest,
            self.escalation,
        )

    def escalated(self, level: int, now_ms: int) -> SuspensionOrder:
        return with_escalation(self, level, now_ms)

    def released(self, now_ms: int, reason: str | None = None) -> SuspensionOrder:
        """Lift the suspension at the addressee it went to: priority 0, no reports or evidence."""
        return replace(
            self,
            version=0,
            priority=0,
            reasons=(reason or RELEASE_REASON,),
            report_ids=(),
            evidence=(),
            issued_at_ms=now_ms,
            evidence_digest=suspension_digest((), ()),
            escalation=0,
            base_priority=0,
            status="released",
        )


@dataclass(frozen=True, slots=True)
class WarningOrder:
    warning_id: str
    version: int
    msisdn: str
    operator: str
    scammer_msisdn: str
    last_contact_at_ms: int
    report_ids: tuple[str, ...]
    issued_at_ms: int
    evidence_digest: str  # warning_digest(report_ids), of the full list even when restored from a cut one
    status: str = "active"  # released: the number turned out to be a suspect, or no report reaches it any more

    kind = "warning"
    escalation = 0  # a warning goes to the victim's operator with no SLA: it is never escalated

    @property
    def action_id(self) -> str:
        return self.warning_id

    @property
    def addressee(self) -> str:
        return self.operator

    @property
    def fingerprint(self) -> WarningFingerprint:
        return (
            self.status,
            self.msisdn,
            self.operator,
            self.scammer_msisdn,
            self.last_contact_at_ms,
            self.evidence_digest,
        )

    def escalated(self, level: int, now_ms: int) -> None:
        return None

    def released(self, now_ms: int, reason: str | None = None) -> WarningOrder:
        """Tell the operator the warning no longer stands: same number and contact, no reports (no reasons)."""
        return replace(
            self, version=0, report_ids=(), issued_at_ms=now_ms, evidence_digest=warning_digest(()), status="released"
        )


@dataclass(frozen=True, slots=True)
class AccountLink:
    """An account whose number is a directly reported phone number (a payment proxy such as PromptPay)."""

    account: AccountKey
    msisdn: str
    report_ids: tuple[str, ...]
    reason: str


@dataclass
class TelecomDecisions:
    """What every suspension and warning a recomputation touched should say now, for the action book."""

    suspensions: list[SuspensionOrder | Withdrawal] = field(default_factory=list)  # by target
    warnings: list[WarningOrder | Withdrawal] = field(default_factory=list)  # by warned number
    links: dict[AccountKey, AccountLink | None] = field(default_factory=dict)  # None: the link is gone


def suspension_action_id(target_type: str, target: str) -> str:
    """Stable across restarts and workers: derived from the target alone."""
    return "sus-" + hashlib.sha256(f"{target_type}:{target}".encode()).hexdigest()[:24]


def warning_id(msisdn: str) -> str:
    return "wrn-" + hashlib.sha256(msisdn.encode()).hexdigest()[:24]


def ids_digest(*lists: tuple[str, ...]) -> str:
    """``sha256:<hex>`` of whole lists of ids, so an action listing only part of them still pins all of them.

    Every list and every id is length-prefixed: no two different sequences of lists share a digest.
    """
    digest = hashlib.sha256()
    for ids in lists:
        digest.update(f"{len(ids)}\x00".encode())
        for part in ids:
            encoded = part.encode()
            digest.update(f"{len(encoded)}:".encode())
            digest.update(encoded)
    return "sha256:" + digest.hexdigest()


def suspension_digest(report_ids: tuple[str, ...], evidence: tuple[str, ...]) -> str:
    """``sha256:<hex>`` of a suspension's full report ids and evidence (the wire lists only their start)."""
    return ids_digest(report_ids, evidence)


def warning_digest(report_ids: tuple[str, ...]) -> str:
    """``sha256:<hex>`` of a warning's full report ids (the wire lists only their start)."""
    return ids_digest(report_ids)


def proxy_keys(msisdn: str) -> tuple[str, ...]:
    """The account numbers a phone number takes as a payment proxy (see the module docstring)."""
    digits = msisdn.lstrip("+")
    if msisdn.startswith("+66") and len(digits) > 2:
        return (digits, "0" + digits[2:])
    return (digits,)


_SEPARATORS = str.maketrans("", "", " -.()")


def account_proxy_key(number: str) -> str | None:
    """An account number as a possible phone number: its digits, or None if it is not all digits."""
    if not (number.isascii() and number.isdigit()):
        number = number.translate(_SEPARATORS)
        if not (number.isascii() and number.isdigit()):
            return None
    return number if 7 <= len(number) <= 16 else None


class TelecomIndex:
    """Telecom events, deduplicated by event id, under every key a correlation looks them up by."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._by_key: dict[IndexKey, list[TelecomEvent]] = {}
        self._by_counterparty: dict[str, list[TelecomEvent]] = {}
        self._last_seen: dict[str, Stamp] = {}  # msisdn -> its latest forgotten event as subscriber
        self.latest_ms = BEFORE_ANY_EVENT  # the index's event clock: the latest occurred_at indexed
        self.forgotten_before_ms = BEFORE_ANY_EVENT

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, event: TelecomEvent) -> bool:
        """Index an event; False for an ``event_id`` indexed before, or an event older than the ones forgotten."""
        if event.event_id in self._seen or event.at_ms < self.forgotten_before_ms:
            return False
        self._seen.add(event.event_id)
        self.latest_ms = max(self.latest_ms, event.at_ms)
        for key in event_keys(event):
            if key[0] != "counterparty":
                self._by_key.setdefault(key, []).append(event)
        if event.counterparty_msisdn is not None:
            self._by_counterparty.setdefault(event.counterparty_msisdn, []).append(event)
        return True

    def subscriber(self, msisdn: str) -> list[TelecomEvent]:
        """Events where ``msisdn`` is the subscriber."""
        return self._by_key.get(("msisdn", msisdn), [])

    def counterparty(self, msisdn: str) -> list[TelecomEvent]:
        """Calls and messages where ``msisdn`` is the other party."""
        return self._by_counterparty.get(msisdn, [])

    def lookup(self, key: IndexKey) -> list[TelecomEvent]:
        return self._by_key.get(key, [])

    def latest_operator(self, msisdn: str) -> str | None:
        events = self.subscriber(msisdn)
        if events:
            return max((e.at_ms, e.event_id, e.operator) for e in events)[2]
        forgotten = self._last_seen.get(msisdn)
        return forgotten[2] if forgotten is not None else None

    def forget_before(self, cutoff_ms: int, operators_before_ms: int) -> int:
        """Forget events older than ``cutoff_ms``; a redelivery of one is then ignored. Returns how many went.

        A number's latest operator stays known (one stamp per number) unless older than ``operators_before_ms``.
        """
        for msisdn in [n for n, stamp in self._last_seen.items() if stamp[0] < operators_before_ms]:
            del self._last_seen[msisdn]
        if cutoff_ms <= self.forgotten_before_ms:
            return 0
        self.forgotten_before_ms = cutoff_ms
        gone: set[str] = set()
        for key, events in _prune(self._by_key, cutoff_ms, gone):
            if key[0] == "msisdn":
                latest = max((e.at_ms, e.event_id, e.operator) for e in events)
                self._last_seen[key[1]] = max(latest, self._last_seen.get(key[1], latest))
        _prune(self._by_counterparty, cutoff_ms, gone)
        self._seen -= gone
        return len(gone)


def _prune(
    index: dict[_Key, list[TelecomEvent]], cutoff_ms: int, gone: set[str]
) -> list[tuple[_Key, list[TelecomEvent]]]:
    """Drop events older than ``cutoff_ms`` from an index, adding their ids to ``gone``; the keys left empty."""
    emptied: list[tuple[_Key, list[TelecomEvent]]] = []
    for key, events in list(index.items()):
        kept = [e for e in events if e.at_ms >= cutoff_ms]
        if len(kept) == len(events):
            continue
        gone.update(e.event_id for e in events if e.at_ms < cutoff_ms)
        if kept:
            index[key] = kept
        else:
            del index[key]
            emptied.append((key, events))
    return emptied


def event_keys(event: TelecomEvent) -> list[IndexKey]:
    """Every index key an event is filed under; a report that read one of them must be recomputed."""
    keys: list[IndexKey] = [("msisdn", event.msisdn)]
    if event.counterparty_msisdn is not None:
        keys.append(("counterparty", event.counterparty_msisdn))
    if event.kind == "sim_registration" and event.registered_id is not None:
        keys.append(("registered_id", event.registered_id))
    if event.imei is not None:
        keys.append(("imei", event.imei))
    if event.kind == "data_session" and event.ip is not None:
        keys.append(("ip", event.ip))
    return keys


@dataclass(slots=True)
class Claim:
    """What one report says about one target."""

    direct: bool = False
    links: set[tuple[str, str]] = field(default_factory=set)  # (link kind, reason)
    notes: set[str] = field(default_factory=set)  # further reasons
    evidence: set[tuple[int, str]] = field(default_factory=set)  # (at_ms, event_id)
    seen: Stamp | None = None  # the latest event naming the operator to address

    def cite(self, event: TelecomEvent) -> None:
        self.evidence.add((event.at_ms, event.event_id))

    def see(self, event: TelecomEvent) -> None:
        stamp = (event.at_ms, event.event_id, event.operator)
        if self.seen is None or stamp > self.seen:
            self.seen = stamp


@dataclass(slots=True)
class Implied:
    """Everything one report implies, and the index keys it was computed from."""

    claims: dict[Target, Claim]
    contacts: dict[str, Contact]  # warned number -> most recent contact
    suspects: set[str]
    read: set[IndexKey]


_LINK_KINDS = {"registered_id": "identity", "imei": "handset", "ip": "ip"}


def correlate(report: Report, index: TelecomIndex, settings: TelecomSettings) -> Implied:
    """What a report implies given the indexed events: a pure function of the two."""
    lo = report.reported_at_ms - settings.window_back_ms
    hi = report.reported_at_ms + settings.window_forward_ms

    def window(events: Iterable[TelecomEvent]) -> list[TelecomEvent]:
        return [e for e in events if lo <= e.at_ms <= hi]

    claims: dict[Target, Claim] = {}
    read: set[IndexKey] = set()
    direct = set(report.scammer_phones)

    def claim(target_type: str, target: str) -> Claim:
        found = claims.get((target_type, target))
        if found is None:
            found = claims[(target_type, target)] = Claim()
        return found

    for url in report.scam_urls:
        claim("url", url).direct = True

    for phone in sorted(direct):
        read.add(("msisdn", phone))
        events = window(index.subscriber(phone))
        suspect = claim("msisdn", phone)
        suspect.direct = True
        for event in events:
            suspect.cite(event)
            suspect.see(event)
            if event.kind == "sim_swap":
                suspect.notes.add(f"SIM swapped at {event.operator} on {_iso(event.at_ms)}")
        for event in window(index.counterparty(phone)):
            suspect.cite(event)

        # The number's registrations, handsets and IPs, each looked up once.
        shared: dict[IndexKey, list[TelecomEvent]] = {}
        for event in events:
            for key in event_keys(event):
                if key[0] in _LINK_KINDS:
                    shared.setdefault(key, []).append(event)
        for key, mine in shared.items():
            read.add(key)
            kind = _LINK_KINDS[key[0]]
            if kind != "identity":
                derived = claim(key[0], key[1])
                derived.notes.add(
                    f"handset of reported number {phone}"
                    if kind == "handset"
                    else f"used in a data session by reported number {phone}"
                )
                for event in mine:
                    derived.cite(event)
                    derived.see(event)
            reason = _link_reason(kind, key[1], phone)
            for event in window(index.lookup(key)):
                if event.msisdn in direct:
                    continue
                linked = claim("msisdn", event.msisdn)
                linked.links.add((kind, reason))
                linked.cite(event)
                for own in mine:
                    linked.cite(own)

    suspects = {target for target_type, target in claims if target_type == "msisdn"}
    contacts: dict[str, Contact] = {}
    for number in sorted(suspects):
        read.add(("msisdn", number))
        subscriber = window(index.subscriber(number))
        if number not in direct:
            linked = claims[("msisdn", number)]
            for event in subscriber:
                linked.see(event)
        for event in subscriber:
            if event.kind in ("call", "sms") and event.counterparty_msisdn not in (None, number):
                _contact(contacts, event.counterparty_msisdn, (event.at_ms, event.event_id, number))
        for event in window(index.counterparty(number)):
            if event.kind in ("call", "sms"):
                _contact(contacts, event.msisdn, (event.at_ms, event.event_id, number))
    for number in suspects:
        contacts.pop(number, None)
    return Implied(claims, contacts, suspects, read)


def _contact(contacts: dict[str, Contact], number: str | None, contact: Contact) -> None:
    if number is None:
        return
    known = contacts.get(number)
    if known is None or contact > known:
        contacts[number] = contact


def _link_reason(kind: str, value: str, phone: str) -> str:
    if kind == "identity":
        return f"registered to the same identity document as {phone}"
    if kind == "handset":
        return f"used the same handset (IMEI {value}) as {phone}"
    return f"shared IP {value} in a data session with {phone}"


def _iso(ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


class TelecomCorrelation:
    """Reports and telecom events, correlated into suspensions, warnings and payment-proxy links.

    It keeps the correlation state only; ``decide`` returns what the touched actions should say now.
    """

    def __init__(self, settings: TelecomSettings) -> None:
        self.settings = settings
        self.index = TelecomIndex()
        self.reports: dict[str, Report] = {}
        self._implied: dict[str, Implied] = {}
        self._readers: dict[IndexKey, set[str]] = {}  # index key -> reports computed from it
        self._claimants: dict[Target, set[str]] = {}  # target -> reports claiming it
        self._contacted: dict[str, set[str]] = {}  # warned number -> reports reaching it
        self._suspected: dict[str, set[str]] = {}  # number -> reports holding it a suspect
        self._naming: dict[str, set[str]] = {}  # phone -> reports naming it (payment proxies)
        self._watched: dict[str, set[str]] = {}  # proxy account number -> reported phones
        self._accounts: dict[str, set[AccountKey]] = {}  # proxy account number -> accounts
        self._links: dict[AccountKey, AccountLink] = {}
        self._dirty_reports: set[str] = set()
        self._dirty_warned: set[str] = set()
        self._dirty_accounts: set[AccountKey] = set()

    def add_event(self, event: TelecomEvent) -> bool:
        """Index a telecom event; False for a redelivered ``event_id``."""
        if not self.index.add(event):
            return False
        for kind, value in event_keys(event):
            readers = self._readers.get(("msisdn" if kind == "counterparty" else kind, value))
            if readers:
                self._dirty_reports.update(readers)
        if event.msisdn in self._contacted:
            self._dirty_warned.add(event.msisdn)  # its latest operator may have changed
        return True

    def add_report(self, report: Report) -> bool:
        """Take a report; False if an identical one (up to its broker receipt time) was already taken."""
        known = self.reports.get(report.report_id)
        if known is not None and replace(report, received_at_ms=known.received_at_ms) == known:
            return False
        self.reports[report.report_id] = report
        before = set(known.scammer_phones) if known is not None else set()
        after = set(report.scammer_phones)
        for phone in before - after:
            self._name(phone, report.report_id, named=False)
        for phone in after - before:
            self._name(phone, report.report_id, named=True)
        self.add_accounts(account for sent in report.transfers for account in (sent.source, sent.target))
        self._dirty_reports.add(report.report_id)
        return True

    def add_accounts(self, accounts: Iterable[AccountKey]) -> None:
        """Accounts newly seen in the bank feed or in reports: remembered, and checked against reported numbers."""
        known_accounts, watched, dirty = self._accounts, self._watched, self._dirty_accounts
        for account in accounts:
            key = account_proxy_key(account[2])
            if key is None:
                continue
            same = known_accounts.get(key)
            if same is None:
                known_accounts[key] = {account}
            elif account in same:
                continue
            else:
                same.add(account)
            if key in watched:
                dirty.add(account)

    def decide(self, now_ms: int) -> TelecomDecisions:
        """Recompute what changed since the last call: every touched target and warned number, what it calls for.

        ``now_ms`` only stamps the orders.
        """
        targets: set[Target] = set()
        warned, self._dirty_warned = self._dirty_warned, set()
        dirty, self._dirty_reports = self._dirty_reports, set()
        for report_id in dirty:
            old = self._implied.pop(report_id, None)
            if old is not None:
                self._forget(report_id, old)
                targets.update(old.claims)
                warned.update(old.contacts, old.suspects)
            new = correlate(self.reports[report_id], self.index, self.settings)
            self._remember(report_id, new)
            targets.update(new.claims)
            warned.update(new.contacts, new.suspects)

        suspensions = [self._decide_suspension(target, now_ms) for target in sorted(targets)]
        warnings = [self._decide_warning(number, now_ms) for number in sorted(warned)]
        return TelecomDecisions(suspensions, warnings, self._decide_links())

    # -- expiry ------------------------------------------------------------------------------------

    def forget_events(self) -> int:
        """Forget the events no held report can use, on the events' own clock (module docstring); how many went."""
        settings, latest = self.settings, self.index.latest_ms
        cutoff = latest - settings.window_back_ms - settings.window_forward_ms
        for report in self.reports.values():
            cutoff = min(cutoff, report.reported_at_ms - settings.window_back_ms)
        return self.index.forget_before(cutoff, latest - settings.operator_memory_ms)

    def forget_reports(self, report_ids: Iterable[str]) -> int:
        """Drop expired reports and everything they imply, recomputing nothing; returns how many went."""
        gone = [report for r in report_ids if (report := self.reports.pop(r, None)) is not None]
        for report in gone:
            report_id = report.report_id
            self._dirty_reports.discard(report_id)
            implied = self._implied.pop(report_id, None)
            if implied is not None:
                self._forget(report_id, implied)
            for phone in report.scammer_phones:
                _discard(self._naming, phone, report_id)
                if phone not in self._naming:
                    for key in proxy_keys(phone):
                        _discard(self._watched, key, phone)
        if gone:
            for account in [a for a, link in self._links.items() if link.msisdn not in self._naming]:
                del self._links[account]
        return len(gone)

    # -- bookkeeping -------------------------------------------------------------------------------

    def _remember(self, report_id: str, implied: Implied) -> None:
        self._implied[report_id] = implied
        for key in implied.read:
            self._readers.setdefault(key, set()).add(report_id)
        for target in implied.claims:
            self._claimants.setdefault(target, set()).add(report_id)
        for number in implied.contacts:
            self._contacted.setdefault(number, set()).add(report_id)
        for number in implied.suspects:
            self._suspected.setdefault(number, set()).add(report_id)

    def _forget(self, report_id: str, implied: Implied) -> None:
        for key in implied.read:
            _discard(self._readers, key, report_id)
        for target in implied.claims:
            _discard(self._claimants, target, report_id)
        for number in implied.contacts:
            _discard(self._contacted, number, report_id)
        for number in implied.suspects:
            _discard(self._suspected, number, report_id)

    def _name(self, phone: str, report_id: str, *, named: bool) -> None:
        """Track which reports name a phone, and which accounts' payment-proxy links that touches."""
        if named:
            self._naming.setdefault(phone, set()).add(report_id)
        else:
            _discard(self._naming, phone, report_id)
        for key in proxy_keys(phone):
            if phone in self._naming:
                self._watched.setdefault(key, set()).add(phone)
            else:
                _discard(self._watched, key, phone)
            self._dirty_accounts.update(self._accounts.get(key, ()))

    # -- decisions ---------------------------------------------------------------------------------

    def _decide_suspension(self, target: Target, now_ms: int) -> SuspensionOrder | Withdrawal:
        target_type, value = target
        action_id = suspension_action_id(target_type, value)
        behind = sorted(self._claimants.get(target, ()))
        if not behind:
            return Withdrawal(action_id)
        claims = [self._implied[r].claims[target] for r in behind]
        reports = [self.reports[r] for r in behind]
        named = sum(1 for c in claims if c.direct)
        links = sorted({link for c in claims for link in c.links}, key=lambda link: link[1])
        notes = sorted({note for c in claims for note in c.notes})
        if target_type == "url":
            base = min(URL_MAX_PRIORITY, URL_PRIORITY + CORROBORATION_STEP * (named - 1))
            reasons = [f"reported as a scam page in {named} report(s)"]
            addressee = platform_for_url(value, self.settings.default_addressee)
        else:
            seen = [c.seen for c in claims if c.seen is not None]
            addressee = max(seen)[2] if seen else self.settings.default_addressee
            if target_type == "imei":
                base, reasons = IMEI_PRIORITY, notes
            elif target_type == "ip":
                base, reasons = IP_PRIORITY, notes
            elif named:
                base = min(DIRECT_MAX_PRIORITY, DIRECT_PRIORITY + CORROBORATION_STEP * (named - 1))
                reasons = [f"reported as the scammer's number in {named} report(s)", *notes]
                reasons += [f"also {reason}" for _, reason in links]
            else:
                base = max(LINK_PRIORITY[kind] for kind, _ in links)
                reasons = [reason for _, reason in links]
                reasons.append("not reported itself: linked to a reported number, lower priority")
        report_ids = tuple(behind)
        evidence = tuple(event_id for _, event_id in sorted({e for c in claims for e in c.evidence}))
        return SuspensionOrder(
            action_id=action_id,
            version=0,
            target_type=target_type,
            target=value,
            addressee=addressee,
            priority=base,
            reasons=tuple(reasons),
            report_ids=report_ids,
            evidence=evidence,
            issued_at_ms=now_ms,
            report_received_at_ms=min(r.received_at_ms for r in reports),
            evidence_digest=suspension_digest(report_ids, evidence),
            base_priority=base,
        )

    def _decide_warning(self, number: str, now_ms: int) -> WarningOrder | Withdrawal:
        action_id = warning_id(number)
        behind = sorted(self._contacted.get(number, ()))
        if not behind or number in self._suspected:
            return Withdrawal(action_id)
        at_ms, _, scammer = max(self._implied[r].contacts[number] for r in behind)
        report_ids = tuple(behind)
        return WarningOrder(
            warning_id=action_id,
            version=0,
            msisdn=number,
            operator=self.index.latest_operator(number) or self.settings.default_addressee,
            scammer_msisdn=scammer,
            last_contact_at_ms=at_ms,
            report_ids=report_ids,
            issued_at_ms=now_ms,
            evidence_digest=warning_digest(report_ids),
        )

    def _decide_links(self) -> dict[AccountKey, AccountLink | None]:
        changed: dict[AccountKey, AccountLink | None] = {}
        dirty, self._dirty_accounts = self._dirty_accounts, set()
        for account in sorted(dirty):
            link = self._link(account)
            if link == self._links.get(account):
                continue
            if link is None:
                del self._links[account]
            else:
                self._links[account] = link
            changed[account] = link
        return changed

    def _link(self, account: AccountKey) -> AccountLink | None:
        key = account_proxy_key(account[2])
        phones = self._watched.get(key) if key is not None else None
        if not phones:
            return None
        phone = min(phones)
        return AccountLink(
            account=account,
            msisdn=phone,
            report_ids=tuple(sorted(self._naming[phone])),
            reason=f"account number {account[2]} is reported scammer number {phone} used as a payment proxy",
        )


def _discard(mapping: dict[_Key, set[str]], key: _Key, member: str) -> None:
    members = mapping.get(key)
    if members is not None:
        members.discard(member)
        if not members:
            del mapping[key]

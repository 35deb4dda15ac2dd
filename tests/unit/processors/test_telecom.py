"""Telecom correlation (processors/telecom.py): suspensions, takedowns, victim warnings and payment-proxy links.

Versions come from an ``ActionBook``, settled as ``pipeline/interception.py`` settles them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from processors.action_book import ActionBook, ranked
from processors.records import AccountKey, Report, TelecomEvent, Transfer
from processors.telecom import (
    DIRECT_PRIORITY,
    IMEI_PRIORITY,
    IP_PRIORITY,
    LINK_PRIORITY,
    URL_PRIORITY,
    AccountLink,
    SuspensionOrder,
    TelecomCorrelation,
    TelecomDecisions,
    TelecomSettings,
    WarningOrder,
    suspension_action_id,
    warning_id,
)

HOUR = 3600 * 1000
DAY = 24 * HOUR
T0 = 1_750_000_000_000  # when the victim reported
NOW = T0 + HOUR
SETTINGS = TelecomSettings()

SCAMMER = "+66811111111"
SCAMMER_2 = "+66822222222"
MULE_SIM = "+66833333333"
OTHER_SIM = "+66844444444"
VICTIM = "+66855555555"
VICTIM_2 = "+66866666666"
IMEI = "356789012345678"


def report(report_id: str, *phones: str, urls: tuple[str, ...] = (), at: int = T0, received: int = 0) -> Report:
    return Report(report_id, at, received or at + 5_000, f"victim-{report_id}", "TH", "call-centre", (), phones, urls)


def event(
    event_id: str, kind: str, msisdn: str, at: int = T0 - HOUR, operator: str = "AIS", **extra: str
) -> TelecomEvent:
    return TelecomEvent(event_id, operator, kind, msisdn, at, **extra)


def call(event_id: str, caller: str, callee: str, at: int = T0 - HOUR, operator: str = "AIS") -> TelecomEvent:
    return TelecomEvent(event_id, operator, "call", caller, at, counterparty_msisdn=callee)


@dataclass
class Issued:
    suspensions: list[SuspensionOrder] = field(default_factory=list)  # new versions, highest priority first
    warnings: list[WarningOrder] = field(default_factory=list)  # new versions
    links: dict[AccountKey, AccountLink | None] = field(default_factory=dict)  # None: the link is gone


class Correlated:
    """A correlation and its action book."""

    def __init__(self, settings: TelecomSettings = SETTINGS) -> None:
        self.correlation = TelecomCorrelation(settings)
        self.book = ActionBook()

    def add_report(self, report: Report) -> bool:
        return self.correlation.add_report(report)

    def add_event(self, event: TelecomEvent) -> bool:
        return self.correlation.add_event(event)

    def add_accounts(self, accounts: list[AccountKey]) -> None:
        self.correlation.add_accounts(accounts)

    def decide(self, now_ms: int) -> Issued:
        decisions: TelecomDecisions = self.correlation.decide(now_ms)
        return Issued(
            ranked(self.book.settle(decisions.suspensions, now_ms)),
            self.book.settle(decisions.warnings, now_ms),
            decisions.links,
        )

    def escalate(self, action_id: str, now_ms: int) -> SuspensionOrder | None:
        order = self.book.escalate(action_id, now_ms)
        assert order is None or isinstance(order, SuspensionOrder)
        return order

    def restore(self, order: SuspensionOrder | WarningOrder) -> None:
        """As read back from an actions topic at start-up."""
        self.book.restore(order)


def feed(*items: Report | TelecomEvent, correlation: Correlated | None = None) -> Correlated:
    correlation = correlation if correlation is not None else Correlated()
    for item in items:
        if isinstance(item, Report):
            correlation.add_report(item)
        else:
            correlation.add_event(item)
    return correlation


def suspensions(decisions: Issued) -> dict[tuple[str, str], SuspensionOrder]:
    return {(o.target_type, o.target): o for o in decisions.suspensions}


def warnings(decisions: Issued) -> dict[str, WarningOrder]:
    return {o.msisdn: o for o in decisions.warnings}


def msisdn(number: str) -> tuple[str, str]:
    return ("msisdn", number)


# -- direct suspects ------------------------------------------------------------------------------


def test_a_reported_number_is_suspended_at_its_latest_operator() -> None:
    # Ported from AIS to TRUE: the latest in-window event names the operator that can act now.
    c = feed(
        event("e1", "sms", SCAMMER, T0 - 3 * DAY, "AIS", counterparty_msisdn=VICTIM_2),
        event("e2", "data_session", SCAMMER, T0 - DAY, "TRUE", ip="198.51.100.7"),
        report("r1", SCAMMER),
    )
    order = suspensions(c.decide(NOW))[msisdn(SCAMMER)]
    assert order.action_id == suspension_action_id("msisdn", SCAMMER)
    assert order.action_id.startswith("sus-") and len(order.action_id) == 4 + 24
    assert (order.version, order.status, order.addressee) == (1, "active", "TRUE")
    assert order.priority == order.base_priority == DIRECT_PRIORITY
    assert order.report_ids == ("r1",)
    assert order.evidence == ("e1", "e2")  # oldest first
    assert order.issued_at_ms == NOW
    assert order.report_received_at_ms == T0 + 5_000
    assert order.reasons[0] == "reported as the scammer's number in 1 report(s)"


def test_a_reported_number_without_events_goes_to_the_default_addressee() -> None:
    c = feed(report("r1", SCAMMER))
    order = suspensions(c.decide(NOW))[msisdn(SCAMMER)]
    assert order.addressee == "war-room"
    assert order.evidence == ()
    c = Correlated(TelecomSettings(default_addressee="nbtc-desk"))
    c.add_report(report("r1", SCAMMER))
    assert suspensions(c.decide(NOW))[msisdn(SCAMMER)].addressee == "nbtc-desk"


def test_calls_to_the_reported_number_are_evidence_but_do_not_pick_its_operator() -> None:
    c = feed(
        event("e1", "sim_registration", SCAMMER, T0 - 10 * DAY, "DTAC", registered_id="ID-1"),
        call("e2", VICTIM, SCAMMER, T0 - HOUR, operator="AIS"),  # the victim's operator
        report("r1", SCAMMER),
    )
    order = suspensions(c.decide(NOW))[msisdn(SCAMMER)]
    assert order.addressee == "DTAC"
    assert order.evidence == ("e1", "e2")


def test_window_edges_are_inclusive_and_nothing_beyond_counts() -> None:
    c = feed(
        report("r1", SCAMMER),
        event("back-edge", "sms", SCAMMER, T0 - 30 * DAY, counterparty_msisdn=VICTIM),
        event("too-old", "sms", SCAMMER, T0 - 30 * DAY - 1, counterparty_msisdn=VICTIM),
        event("forward-edge", "sms", SCAMMER, T0 + 24 * HOUR, counterparty_msisdn=VICTIM),
        event("too-late", "sms", SCAMMER, T0 + 24 * HOUR + 1, "TRUE", counterparty_msisdn=VICTIM_2),
    )
    decisions = c.decide(NOW)
    order = suspensions(decisions)[msisdn(SCAMMER)]
    assert order.evidence == ("back-edge", "forward-edge")
    assert order.addressee == "AIS"  # the later TRUE event is outside the window
    assert set(warnings(decisions)) == {VICTIM}


def test_the_window_follows_the_settings() -> None:
    c = Correlated(TelecomSettings(window_back_ms=HOUR, window_forward_ms=0))
    feed(
        report("r1", SCAMMER),
        event("in", "sms", SCAMMER, T0 - HOUR, counterparty_msisdn=VICTIM),
        event("out", "sms", SCAMMER, T0 + 1, counterparty_msisdn=VICTIM),
        correlation=c,
    )
    assert suspensions(c.decide(NOW))[msisdn(SCAMMER)].evidence == ("in",)


def test_sim_swaps_add_evidence_and_a_reason() -> None:
    c = feed(report("r1", SCAMMER), event("swap", "sim_swap", SCAMMER, T0 - DAY, "TRUE"))
    order = suspensions(c.decide(NOW))[msisdn(SCAMMER)]
    assert order.evidence == ("swap",)
    assert any(r.startswith("SIM swapped at TRUE on ") for r in order.reasons)


def test_reports_naming_the_same_number_merge_and_corroborate() -> None:
    c = feed(report("r2", SCAMMER), report("r1", SCAMMER, received=T0 + 1))
    order = suspensions(c.decide(NOW))[msisdn(SCAMMER)]
    assert order.report_ids == ("r1", "r2")
    assert order.priority == DIRECT_PRIORITY + 5
    assert order.report_received_at_ms == T0 + 1
    assert order.reasons[0] == "reported as the scammer's number in 2 report(s)"
    for n in range(3, 7):
        c.add_report(report(f"r{n}", SCAMMER))
    assert suspensions(c.decide(NOW))[msisdn(SCAMMER)].priority == 100


def test_a_later_event_issues_a_new_version_with_more_evidence() -> None:
    c = feed(report("r1", SCAMMER), call("e1", SCAMMER, VICTIM))
    first = suspensions(c.decide(NOW))[msisdn(SCAMMER)]
    c.add_event(call("e2", SCAMMER, VICTIM_2, T0 + HOUR))
    second = suspensions(c.decide(NOW + 1))[msisdn(SCAMMER)]
    assert (first.version, second.version) == (1, 2)
    assert second.evidence == ("e1", "e2")
    assert c.decide(NOW + 2) == Issued()


# -- links ----------------------------------------------------------------------------------------


def test_same_identity_document_links_at_lower_priority() -> None:
    c = feed(
        report("r1", SCAMMER),
        event("reg-1", "sim_registration", SCAMMER, T0 - 5 * DAY, registered_id="ID-9"),
        event("reg-2", "sim_registration", MULE_SIM, T0 - 4 * DAY, "DTAC", registered_id="ID-9"),
        event("reg-3", "sim_registration", OTHER_SIM, T0 - 4 * DAY, "DTAC", registered_id="ID-other"),
    )
    orders = suspensions(c.decide(NOW))
    linked = orders[msisdn(MULE_SIM)]
    assert linked.reasons[0] == f"registered to the same identity document as {SCAMMER}"
    assert linked.priority == LINK_PRIORITY["identity"] < orders[msisdn(SCAMMER)].priority
    assert linked.addressee == "DTAC"
    assert linked.evidence == ("reg-1", "reg-2")
    assert linked.report_ids == ("r1",)
    assert msisdn(OTHER_SIM) not in orders
    assert "ID-9" not in " ".join(linked.reasons)  # the document number stays out of the action


def test_same_handset_links_and_the_handset_is_suspended() -> None:
    c = feed(
        report("r1", SCAMMER),
        event("s1", "sms", SCAMMER, T0 - 2 * DAY, "TRUE", counterparty_msisdn=VICTIM, imei=IMEI),
        event("m1", "data_session", MULE_SIM, T0 - DAY, "AIS", ip="192.0.2.1", imei=IMEI),
    )
    orders = suspensions(c.decide(NOW))
    linked = orders[msisdn(MULE_SIM)]
    assert linked.reasons[0] == f"used the same handset (IMEI {IMEI}) as {SCAMMER}"
    assert linked.priority == LINK_PRIORITY["handset"]
    assert linked.addressee == "AIS"
    assert linked.evidence == ("s1", "m1")
    handset = orders[("imei", IMEI)]
    assert (handset.addressee, handset.priority, handset.evidence) == ("TRUE", IMEI_PRIORITY, ("s1",))
    assert handset.reasons == (f"handset of reported number {SCAMMER}",)
    assert orders[msisdn(SCAMMER)].priority > handset.priority > linked.priority


def test_shared_ip_in_data_sessions_links_at_the_lowest_msisdn_priority() -> None:
    ip = "203.0.113.50"
    c = feed(
        report("r1", SCAMMER),
        event("d1", "data_session", SCAMMER, T0 - DAY, "TRUE", ip=ip),
        event("d2", "data_session", MULE_SIM, T0 - DAY, "DTAC", ip=ip),
        event("d3", "data_session", OTHER_SIM, T0 - 40 * DAY, "DTAC", ip=ip),  # outside the window
    )
    orders = suspensions(c.decide(NOW))
    linked = orders[msisdn(MULE_SIM)]
    assert linked.reasons[0] == f"shared IP {ip} in a data session with {SCAMMER}"
    assert linked.priority == LINK_PRIORITY["ip"]
    assert msisdn(OTHER_SIM) not in orders
    address = orders[("ip", ip)]
    assert (address.addressee, address.priority, address.evidence) == ("TRUE", IP_PRIORITY, ("d1",))
    assert linked.priority > IP_PRIORITY


def test_linking_is_one_level_only() -> None:
    c = feed(
        report("r1", SCAMMER),
        event("reg-1", "sim_registration", SCAMMER, T0 - 5 * DAY, registered_id="ID-9"),
        event("reg-2", "sim_registration", MULE_SIM, T0 - 5 * DAY, registered_id="ID-9", imei=IMEI),
        event("x", "call", OTHER_SIM, T0 - DAY, imei=IMEI, counterparty_msisdn=VICTIM),  # MULE_SIM's handset
    )
    orders = suspensions(c.decide(NOW))
    assert msisdn(MULE_SIM) in orders
    assert msisdn(OTHER_SIM) not in orders
    assert ("imei", IMEI) not in orders  # only the handsets of reported numbers


def test_a_number_both_named_and_linked_is_direct_with_the_link_as_a_further_reason() -> None:
    c = feed(
        report("r1", SCAMMER),
        report("r2", MULE_SIM),
        event("reg-1", "sim_registration", SCAMMER, T0 - 5 * DAY, registered_id="ID-9"),
        event("reg-2", "sim_registration", MULE_SIM, T0 - 5 * DAY, registered_id="ID-9"),
    )
    order = suspensions(c.decide(NOW))[msisdn(MULE_SIM)]
    assert order.priority == DIRECT_PRIORITY
    assert order.report_ids == ("r1", "r2")
    assert f"also registered to the same identity document as {SCAMMER}" in order.reasons


def test_later_events_of_a_linked_number_update_the_report() -> None:
    c = feed(
        report("r1", SCAMMER),
        event("reg-1", "sim_registration", SCAMMER, T0 - 5 * DAY, registered_id="ID-9"),
        event("reg-2", "sim_registration", MULE_SIM, T0 - 5 * DAY, "DTAC", registered_id="ID-9"),
    )
    assert suspensions(c.decide(NOW))[msisdn(MULE_SIM)].addressee == "DTAC"
    c.add_event(call("m1", MULE_SIM, VICTIM, T0 - DAY, operator="TRUE"))  # touches no key the link was found by
    decisions = c.decide(NOW + 1)
    assert suspensions(decisions)[msisdn(MULE_SIM)].addressee == "TRUE"
    assert warnings(decisions)[VICTIM].scammer_msisdn == MULE_SIM


def test_every_directly_reported_target_ranks_above_every_linked_one() -> None:
    c = feed(
        report("r1", SCAMMER, urls=("https://scam.example/",)),
        event("s1", "data_session", SCAMMER, T0 - DAY, ip="203.0.113.50", imei=IMEI),
        event("reg-1", "sim_registration", SCAMMER, T0 - DAY, registered_id="ID-9"),
        event("m1", "sim_registration", MULE_SIM, T0 - DAY, registered_id="ID-9", imei=IMEI),
        event("m2", "data_session", OTHER_SIM, T0 - DAY, ip="203.0.113.50"),
    )
    decisions = c.decide(NOW)
    orders = suspensions(decisions)
    ranked = [(o.target_type, o.target) for o in decisions.suspensions]  # highest priority first
    assert len({o.priority for o in decisions.suspensions}) == len(ranked)
    assert ranked == [
        msisdn(SCAMMER),
        ("url", "https://scam.example/"),
        ("imei", IMEI),
        msisdn(MULE_SIM),  # identity and handset: the stronger link counts
        msisdn(OTHER_SIM),
        ("ip", "203.0.113.50"),
    ]
    assert orders[msisdn(MULE_SIM)].priority == LINK_PRIORITY["identity"]
    assert len(orders[msisdn(MULE_SIM)].reasons) == 3  # two links and the "not reported itself" note


# -- takedowns -----------------------------------------------------------------------------------


def test_scam_urls_become_takedowns_at_the_hosting_platform() -> None:
    c = feed(
        report("r1", urls=("https://www.facebook.com/fake-bank", "https://fake-bank.example/login")),
        report("r2", urls=("https://www.facebook.com/fake-bank",)),
    )
    orders = suspensions(c.decide(NOW))
    page = orders[("url", "https://www.facebook.com/fake-bank")]
    assert (page.addressee, page.report_ids, page.evidence) == ("meta", ("r1", "r2"), ())
    assert page.priority == URL_PRIORITY + 5
    assert page.action_id == suspension_action_id("url", "https://www.facebook.com/fake-bank")
    assert orders[("url", "https://fake-bank.example/login")].addressee == "war-room"


def test_a_report_without_phones_or_urls_is_kept_but_implies_nothing() -> None:
    c = Correlated()
    assert c.add_report(report("r1"))
    assert "r1" in c.correlation.reports
    assert c.decide(NOW) == Issued()


# -- victim warnings -----------------------------------------------------------------------------


def test_numbers_the_scammer_called_or_that_messaged_the_scammer_are_warned() -> None:
    c = feed(
        report("r1", SCAMMER),
        call("c1", SCAMMER, VICTIM, T0 - 2 * DAY),
        event("s1", "sms", VICTIM_2, T0 - DAY, "DTAC", counterparty_msisdn=SCAMMER),
        event("sw", "sim_swap", OTHER_SIM, T0 - DAY, counterparty_msisdn=SCAMMER),  # not a contact
    )
    found = warnings(c.decide(NOW))
    assert set(found) == {VICTIM, VICTIM_2}
    first = found[VICTIM]
    assert first.warning_id == warning_id(VICTIM) and first.warning_id.startswith("wrn-")
    assert (first.version, first.status) == (1, "active")
    assert (first.scammer_msisdn, first.last_contact_at_ms, first.report_ids) == (SCAMMER, T0 - 2 * DAY, ("r1",))
    assert first.operator == "war-room"  # no event of the victim's own: operator unknown
    assert found[VICTIM_2].operator == "DTAC"


def test_the_warned_numbers_latest_known_operator_at_any_time() -> None:
    c = feed(
        report("r1", SCAMMER),
        call("c1", SCAMMER, VICTIM, T0 - DAY),
        event("v1", "data_session", VICTIM, T0 - 90 * DAY, "DTAC", ip="192.0.2.9"),
    )
    assert warnings(c.decide(NOW))[VICTIM].operator == "DTAC"
    c.add_event(event("v2", "data_session", VICTIM, T0 + 60 * DAY, "TRUE", ip="192.0.2.9"))
    again = warnings(c.decide(NOW))[VICTIM]
    assert (again.operator, again.version) == ("TRUE", 2)


def test_suspects_are_never_warned() -> None:
    c = feed(
        report("r1", SCAMMER, SCAMMER_2),
        call("c1", SCAMMER, SCAMMER_2),
        event("reg-1", "sim_registration", SCAMMER, T0 - 5 * DAY, registered_id="ID-9"),
        event("reg-2", "sim_registration", MULE_SIM, T0 - 5 * DAY, registered_id="ID-9"),
        call("c2", MULE_SIM, SCAMMER),
        call("c3", MULE_SIM, VICTIM),  # a linked number's calls warn too
    )
    found = warnings(c.decide(NOW))
    assert set(found) == {VICTIM}
    assert found[VICTIM].scammer_msisdn == MULE_SIM


def test_the_most_recent_contact_wins_and_every_report_is_listed() -> None:
    c = feed(
        report("r1", SCAMMER),
        report("r2", SCAMMER_2),
        call("c1", SCAMMER, VICTIM, T0 - 3 * DAY),
        call("c2", VICTIM, SCAMMER_2, T0 - DAY),
        call("c3", SCAMMER, VICTIM, T0 - 2 * DAY),
    )
    found = warnings(c.decide(NOW))[VICTIM]
    assert (found.scammer_msisdn, found.last_contact_at_ms) == (SCAMMER_2, T0 - DAY)
    assert found.report_ids == ("r1", "r2")


def test_a_warned_number_that_turns_out_a_suspect_is_released() -> None:
    c = feed(report("r1", SCAMMER), call("c1", SCAMMER, VICTIM))
    assert warnings(c.decide(NOW))[VICTIM].status == "active"
    c.add_report(report("r2", VICTIM))
    decisions = c.decide(NOW + 1)
    released = warnings(decisions)[VICTIM]
    assert (released.status, released.version, released.report_ids) == ("released", 2, ())
    assert released.scammer_msisdn == SCAMMER
    assert msisdn(VICTIM) in suspensions(decisions)
    assert c.decide(NOW + 2) == Issued()


# -- corrections and releases ------------------------------------------------------------------------


def test_a_corrected_report_releases_what_it_no_longer_implies() -> None:
    c = feed(report("r1", SCAMMER, urls=("https://t.me/scam",)), call("c1", SCAMMER, VICTIM))
    c.decide(NOW)
    assert c.add_report(report("r1", SCAMMER_2))
    decisions = c.decide(NOW + 1)
    orders = suspensions(decisions)
    assert orders[msisdn(SCAMMER)].status == "released"
    assert orders[msisdn(SCAMMER)].addressee == "AIS"  # the release goes where the suspension went
    assert orders[("url", "https://t.me/scam")].status == "released"
    assert orders[msisdn(SCAMMER_2)].status == "active"
    assert warnings(decisions)[VICTIM].status == "released"
    assert c.escalate(suspension_action_id("msisdn", SCAMMER), NOW) is None


# -- idempotency ---------------------------------------------------------------------------------


def test_redelivered_events_and_reports_issue_nothing_new() -> None:
    items: list[Report | TelecomEvent] = [
        report("r1", SCAMMER, urls=("https://line.me/x",)),
        call("c1", SCAMMER, VICTIM),
    ]
    c = feed(*items)
    first = c.decide(NOW)
    assert first.suspensions and first.warnings
    assert not c.add_event(call("c1", SCAMMER, VICTIM))
    assert not c.add_event(call("c1", SCAMMER, VICTIM_2, T0))  # a reused event id is the first delivery
    assert not c.add_report(report("r1", SCAMMER, urls=("https://line.me/x",)))
    assert not c.add_report(report("r1", SCAMMER, urls=("https://line.me/x",), received=T0 + 99))
    assert c.decide(NOW + 1) == Issued()


def test_a_report_that_changes_nothing_telecom_related_issues_nothing() -> None:
    c = feed(report("r1", SCAMMER))
    c.decide(NOW)
    amended = Report("r1", T0, T0 + 5_000, "victim-r1", "TH", "call-centre", (_transfer("bank-acct"),), (SCAMMER,), ())
    assert c.add_report(amended)
    assert c.decide(NOW + 1).suspensions == []


# -- escalation and restore ------------------------------------------------------------------------


def test_escalate_raises_priority_and_versions() -> None:
    c = feed(report("r1", SCAMMER), report("r2", urls=("https://x.com/scam",)))
    orders = suspensions(c.decide(NOW))
    number = orders[msisdn(SCAMMER)]
    escalated = c.escalate(number.action_id, NOW + HOUR)
    assert escalated is not None
    assert (escalated.version, escalated.escalation) == (2, 1)
    assert escalated.priority == DIRECT_PRIORITY + 10
    assert escalated.base_priority == DIRECT_PRIORITY
    assert escalated.reasons[-1].startswith("escalated:")
    assert escalated.issued_at_ms == NOW + HOUR
    again = c.escalate(number.action_id, NOW + 2 * HOUR)
    assert again is not None and (again.version, again.priority) == (3, 100)  # capped
    assert sum(r.startswith("escalated:") for r in again.reasons) == 1
    # New evidence keeps the escalation.
    c.add_event(call("c1", SCAMMER, VICTIM))
    rebuilt = suspensions(c.decide(NOW + 3 * HOUR))[msisdn(SCAMMER)]
    assert (rebuilt.version, rebuilt.escalation, rebuilt.priority) == (4, 2, 100)
    assert rebuilt.reasons[-1].startswith("escalated:")
    page = c.escalate(orders[("url", "https://x.com/scam")].action_id, NOW)
    assert page is not None and page.priority == URL_PRIORITY + 10


def test_escalate_ignores_unknown_ids_and_never_escalates_a_warning() -> None:
    c = feed(report("r1", SCAMMER), call("c1", SCAMMER, VICTIM))
    c.decide(NOW)
    assert c.escalate("frz-0123456789abcdef01234567", NOW) is None
    assert c.escalate(warning_id(VICTIM), NOW) is None


def test_restored_versions_are_adopted_without_reissuing() -> None:
    before = feed(report("r1", SCAMMER), call("c1", SCAMMER, VICTIM))
    first = before.decide(NOW)
    escalated = before.escalate(first.suspensions[0].action_id, NOW)
    assert escalated is not None

    after = Correlated()
    after.restore(escalated)
    after.restore(first.warnings[0])
    feed(report("r1", SCAMMER), call("c1", SCAMMER, VICTIM), correlation=after)
    assert after.decide(NOW + 1) == Issued()
    # The adopted order can be escalated further.
    further = after.escalate(escalated.action_id, NOW + 2)
    assert further is not None and (further.version, further.escalation) == (escalated.version + 1, 2)


def test_a_restored_version_that_nothing_implies_any_more_is_released() -> None:
    before = feed(report("r1", SCAMMER), call("c1", SCAMMER, VICTIM))
    issued = before.decide(NOW)
    after = Correlated()
    for order in issued.suspensions:
        after.restore(order)
    for warning in issued.warnings:
        after.restore(warning)
    feed(report("r1", SCAMMER), call("c1", SCAMMER, VICTIM), correlation=after)
    after.decide(NOW)
    after.add_report(report("r1", SCAMMER_2))  # corrected while we were down
    after.add_report(report("r2", VICTIM))
    decisions = after.decide(NOW + 1)
    assert suspensions(decisions)[msisdn(SCAMMER)].status == "released"
    assert warnings(decisions)[VICTIM].status == "released"


def _many_reports_and_calls() -> list[Report | TelecomEvent]:
    """Five reports naming the scammer, who called the victim five times from TRUE."""
    reports: list[Report | TelecomEvent] = [report(f"r{n}", SCAMMER) for n in range(5)]
    calls = [call(f"c{n}", SCAMMER, VICTIM, at=T0 - (n + 1) * HOUR, operator="TRUE") for n in range(5)]
    return [*reports, *calls, event("v1", "sms", VICTIM, operator="DTAC", counterparty_msisdn=VICTIM_2)]


def _restored_from_cut_lists(issued: Issued) -> Correlated:
    """A fresh correlation that restored the issued versions as the wire carries them: lists cut, digests whole."""
    after = Correlated()
    for order in issued.suspensions:
        cut = replace(order, report_ids=order.report_ids[:2], evidence=order.evidence[:2])
        after.restore(cut)
    for warning in issued.warnings:
        cut_warning = replace(warning, report_ids=warning.report_ids[:2])
        after.restore(cut_warning)
    return after


def test_a_version_restored_from_cut_lists_is_adopted_when_the_content_is_the_same() -> None:
    issued = feed(*_many_reports_and_calls()).decide(NOW)
    scammer, warned = suspensions(issued)[msisdn(SCAMMER)], warnings(issued)[VICTIM]
    assert (len(scammer.report_ids), len(scammer.evidence), len(warned.report_ids)) == (5, 5, 5)

    after = _restored_from_cut_lists(issued)
    feed(*_many_reports_and_calls(), correlation=after)
    assert after.decide(NOW + 1) == Issued()
    adopted = after.book.last(scammer.action_id)
    assert isinstance(adopted, SuspensionOrder) and adopted.evidence == scammer.evidence
    # More evidence past what the wire listed is still new content.
    after.add_event(call("c9", SCAMMER, VICTIM, operator="TRUE"))
    assert suspensions(after.decide(NOW + 2))[msisdn(SCAMMER)].version == scammer.version + 1


def test_a_restored_warning_never_rebuilt_is_released_from_its_restored_copy() -> None:
    issued = feed(*_many_reports_and_calls()).decide(NOW)
    warned = warnings(issued)[VICTIM]

    after = _restored_from_cut_lists(issued)
    # The reports behind the warning are gone from the inputs; a new one names the warned number a scammer.
    feed(report("r9", VICTIM), correlation=after)
    lifted = warnings(after.decide(NOW + 1))[VICTIM]
    assert (lifted.status, lifted.version, lifted.report_ids) == ("released", warned.version + 1, ())
    assert (lifted.operator, lifted.scammer_msisdn, lifted.last_contact_at_ms) == (
        warned.operator,
        SCAMMER,
        warned.last_contact_at_ms,
    )
    assert after.decide(NOW + 2) == Issued()  # released once


def test_a_restored_suspension_never_rebuilt_is_released_to_its_restored_addressee() -> None:
    issued = feed(*_many_reports_and_calls()).decide(NOW)
    scammer = suspensions(issued)[msisdn(SCAMMER)]
    assert scammer.addressee == "TRUE"

    after = feed(*_many_reports_and_calls())
    after.decide(NOW)
    # A later version restored over the one decided here: the book knows it only as read back from the topic.
    later = replace(scammer, version=scammer.version + 1, report_ids=scammer.report_ids[:2], evidence=())
    after.restore(later)
    for n in range(5):
        after.add_report(report(f"r{n}", SCAMMER_2))  # corrected: nothing implies the scammer's number any more
    released = suspensions(after.decide(NOW + 1))[msisdn(SCAMMER)]
    assert (released.status, released.version, released.addressee) == ("released", later.version + 1, "TRUE")
    assert (released.report_ids, released.evidence, released.priority) == ((), (), 0)


# -- payment proxies ---------------------------------------------------------------------------------


def _transfer(target: str) -> Transfer:
    return Transfer("t1", ("bank", "SCB", "victim"), ("bank", "KBANK", target), 500_00, "THB", T0 - DAY)


def bank(number: str, institution: str = "KBANK") -> AccountKey:
    return ("bank", institution, number)


def test_an_account_seen_before_the_report_is_linked_when_the_report_names_its_number() -> None:
    c = Correlated()
    c.add_accounts([bank("0812345678"), bank("66812345678", "SCB"), bank("0899999999"), ("crypto", "X", "0x08")])
    assert c.decide(NOW).links == {}
    c.add_report(report("r1", "+66812345678"))
    links = c.decide(NOW).links
    assert set(links) == {bank("0812345678"), bank("66812345678", "SCB")}
    link = links[bank("0812345678")]
    assert link is not None
    assert link == AccountLink(bank("0812345678"), "+66812345678", ("r1",), link.reason)
    assert "+66812345678" in link.reason and "payment proxy" in link.reason


def test_an_account_seen_after_the_report_is_linked() -> None:
    c = feed(report("r1", "+66812345678"))
    c.decide(NOW)
    c.add_accounts([bank("081-234-5678"), bank("081234567")])  # separators are ignored; one digit short is not
    links = c.decide(NOW).links
    assert list(links) == [bank("081-234-5678")]
    c.add_accounts([bank("081-234-5678")])  # seen before: nothing new
    assert c.decide(NOW).links == {}


def test_proxy_links_follow_the_reports_naming_the_number() -> None:
    c = feed(report("r1", "+66812345678"))
    c.add_accounts([bank("0812345678")])
    c.decide(NOW)
    c.add_report(report("r2", "+66812345678"))
    link = c.decide(NOW).links[bank("0812345678")]
    assert link is not None and link.report_ids == ("r1", "r2")
    c.add_report(report("r1", SCAMMER))
    c.add_report(report("r2", SCAMMER))
    assert c.decide(NOW).links == {bank("0812345678"): None}


def test_only_thai_numbers_take_the_national_form() -> None:
    c = feed(report("r1", "+14155550123"))
    c.add_accounts([bank("14155550123"), bank("04155550123")])
    assert list(c.decide(NOW).links) == [bank("14155550123")]


def test_accounts_in_reports_are_checked_too() -> None:
    c = Correlated()
    c.add_report(Report("r1", T0, T0, "v", "TH", "call-centre", (_transfer("0812345678"),), ("+66812345678",), ()))
    assert list(c.decide(NOW).links) == [bank("0812345678")]


# -- expiry ---------------------------------------------------------------------------------------


def test_events_are_forgotten_on_their_own_clock_but_never_while_a_held_report_needs_them() -> None:
    c = feed(
        call("old", SCAMMER, VICTIM, at=T0 - 40 * DAY),  # before any window
        call("used", SCAMMER, VICTIM, at=T0 - HOUR),
        report("r1", SCAMMER),
    )
    c.decide(NOW)
    c.add_event(call("clock", OTHER_SIM, VICTIM_2, at=T0 + 40 * DAY))  # the events' clock moves on
    index = c.correlation.index

    assert c.correlation.forget_events() == 1  # "old"; r1's window still needs "used"
    assert len(index) == 2 and [e.event_id for e in index.subscriber(SCAMMER)] == ["used"]
    assert not c.add_event(call("old", SCAMMER, VICTIM, at=T0 - 40 * DAY))  # a redelivery is ignored
    assert not c.add_event(call("late", SCAMMER, VICTIM_2, at=T0 - 35 * DAY))  # so is anything as old
    assert c.decide(NOW) == Issued()  # forgetting recomputed and decided nothing

    assert c.correlation.forget_reports(["r1"]) == 1
    assert c.correlation.forget_events() == 1  # "used": no held report needs it any more
    assert len(index) == 1


def test_a_warned_numbers_operator_outlives_its_forgotten_events_for_the_operator_memory() -> None:
    c = feed(
        event("own", "sms", VICTIM, T0 - 32 * DAY, "DTAC", counterparty_msisdn=VICTIM_2),
        call("c1", SCAMMER, VICTIM, at=T0 - 3 * HOUR),
        report("r1", SCAMMER),
    )
    assert warnings(c.decide(NOW))[VICTIM].operator == "DTAC"
    c.add_event(call("clock", OTHER_SIM, MULE_SIM, at=T0 + DAY))
    assert c.correlation.forget_events() == 1  # "own": before r1's window
    c.add_event(call("c2", SCAMMER, VICTIM, at=T0 - 2 * HOUR))  # a later contact changes the warning
    assert warnings(c.decide(NOW))[VICTIM].operator == "DTAC"

    c.add_event(call("clock-2", OTHER_SIM, MULE_SIM, at=T0 + 4 * DAY))  # 36 days after "own"
    c.correlation.forget_events()
    c.add_event(call("c3", SCAMMER, VICTIM, at=T0 - HOUR))
    assert warnings(c.decide(NOW))[VICTIM].operator == SETTINGS.default_addressee


def test_forgetting_a_report_drops_what_it_implies_and_decides_nothing() -> None:
    c = feed(call("c1", SCAMMER, VICTIM), report("r1", SCAMMER, SCAMMER_2), report("r2", SCAMMER))
    c.add_accounts([("bank", "KBANK", "0822222222")])  # SCAMMER_2's number as a payment proxy
    first = c.decide(NOW)
    assert set(suspensions(first)) == {msisdn(SCAMMER), msisdn(SCAMMER_2)} and first.links

    assert c.correlation.forget_reports(["r1", "r1", "never-seen"]) == 1
    assert c.decide(NOW) == Issued()
    assert sorted(c.correlation.reports) == ["r2"]

    # What comes next is decided without r1: r2 still names SCAMMER, nobody SCAMMER_2.
    c.add_event(call("c2", SCAMMER, VICTIM_2))
    c.add_event(call("c3", SCAMMER_2, VICTIM_2))
    c.add_accounts([("bank", "SCB", "0822222222")])
    later = c.decide(NOW + 1)
    assert set(suspensions(later)) == {msisdn(SCAMMER)}
    assert suspensions(later)[msisdn(SCAMMER)].report_ids == ("r2",)
    assert {number: w.report_ids for number, w in warnings(later).items()} == {VICTIM: ("r2",), VICTIM_2: ("r2",)}
    assert later.links == {}

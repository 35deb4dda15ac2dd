"""Which revision of each victim report is in force, whatever order the revisions arrive in.

A partner corrects a report by re-sending its ``report_id`` with other content and a
higher ``revision``. Kafka does not promise the correction arrives after what it corrects
(other partitions, retries, replays), so "the last one received wins" would let arrival
order decide. The rule here does not depend on it:

- the highest revision of a ``report_id`` is in force; a lower revision arriving later
  changes nothing (``stale``);
- the same revision with the same content is a redelivery (``duplicate``); content is
  every field but ``received_at_ms``;
- the same revision with other content is refused (``conflicting``): the first to arrive
  stays in force and the caller dead-letters the other as ``conflicting_revision``.

Reports expire. A report is in force for ``retention_ms`` (the hold duration plus a grace period)
after its revision in force arrived (``received_at_ms``); ``expire`` then closes it. Whatever
arrives later for a closed ``report_id`` (a redelivery, a correction, a stale revision) is refused
(``expired``, dead-lettered as ``expired_report``): every hold the report caused has run out, and
a case to reopen is a new report. A revision arriving ``retention_ms`` or more after the one in
force is refused the same way before ``expire`` has run, so replaying the topic after a restart
decides what the running worker decided. A closed ``report_id`` is remembered for ``closed_ms``
(the input topic's retention: after that a replay no longer finds the report either).

Pure and broker-free: reports in, decisions out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Literal

from processors.records import Report

CONFLICTING_REVISION = "conflicting_revision"
EXPIRED_REPORT = "expired_report"
NEVER_MS = 1 << 62  # a retention no clock reaches

Outcome = Literal["new", "correction", "duplicate", "stale", "conflicting", "expired"]


@dataclass(frozen=True, slots=True)
class RevisionDecision:
    """What one incoming report did to the reports in force."""

    outcome: Outcome
    effective: Report | None  # the report in force for this report_id after the decision; None once closed
    replaced: Report | None = None  # correction: the lower revision it replaces
    error: str = ""  # conflicting, expired: the dead letter's sentence for the sender

    @property
    def accepted(self) -> bool:
        """The incoming report is now in force (new, or a correction)."""
        return self.outcome in ("new", "correction")

    @property
    def reason(self) -> str | None:
        """The dead-letter reason, for a conflicting revision or an expired report only."""
        if self.outcome == "conflicting":
            return CONFLICTING_REVISION
        return EXPIRED_REPORT if self.outcome == "expired" else None


class ReportRevisions(Mapping[str, Report]):
    """The report in force per ``report_id``: a read-only mapping that ``receive`` and ``expire`` update."""

    def __init__(self, retention_ms: int = NEVER_MS, closed_ms: int = NEVER_MS) -> None:
        self._retention_ms = retention_ms
        self._closed_ms = closed_ms
        self._effective: dict[str, Report] = {}
        self._closed: dict[str, int] = {}  # closed report_id -> when it expired

    def __getitem__(self, report_id: str) -> Report:
        return self._effective[report_id]

    def __contains__(self, report_id: object) -> bool:
        return report_id in self._effective

    def __iter__(self) -> Iterator[str]:
        return iter(self._effective)

    def __len__(self) -> int:
        return len(self._effective)

    def receive(self, report: Report) -> RevisionDecision:
        """Decide what ``report`` does, and put it in force if it is new or a correction."""
        held = self._effective.get(report.report_id)
        if held is None:
            closed_at = self._closed.get(report.report_id)
            if closed_at is not None:
                return _expired(report, closed_at)
            self._effective[report.report_id] = report
            return RevisionDecision("new", report)
        if report.received_at_ms >= held.received_at_ms + self._retention_ms:
            return _expired(report, held.received_at_ms + self._retention_ms)
        if report.revision > held.revision:
            self._effective[report.report_id] = report
            return RevisionDecision("correction", report, replaced=held)
        if report.revision < held.revision:
            return RevisionDecision("stale", held)
        differing = _differing_fields(held, report)
        if not differing:
            return RevisionDecision("duplicate", held)
        error = (
            f"report {report.report_id} revision {report.revision} differs from the revision {held.revision} "
            f"already received (in {', '.join(differing)}); "
            f"send a correction with revision {held.revision + 1} or higher"
        )
        return RevisionDecision("conflicting", held, error=error)

    def expired(self, report_id: str) -> bool | None:
        """True once the report expired, False while it is in force, None for a report_id not seen (or long closed)."""
        if report_id in self._effective:
            return False
        return True if report_id in self._closed else None

    def expire(self, now_ms: int) -> list[str]:
        """Close the reports whose revision in force arrived ``retention_ms`` or more before ``now_ms``; their ids.

        Closed ids are forgotten ``closed_ms`` after they expired.
        """
        retention, effective, closed = self._retention_ms, self._effective, self._closed
        expired = sorted(r for r, report in effective.items() if report.received_at_ms + retention <= now_ms)
        for report_id in expired:
            closed[report_id] = effective.pop(report_id).received_at_ms + retention
        for report_id in [r for r, closed_at in closed.items() if closed_at + self._closed_ms <= now_ms]:
            del closed[report_id]
        return expired


def _expired(report: Report, closed_at_ms: int) -> RevisionDecision:
    closed_at = datetime.fromtimestamp(closed_at_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    error = (
        f"report {report.report_id} expired at {closed_at}: its holds have run out and it is no longer "
        "traced, so no revision of it is taken any more; send a new report_id to reopen the case"
    )
    return RevisionDecision("expired", None, error=error)


def _differing_fields(held: Report, report: Report) -> list[str]:
    """The content fields in which two reports differ; the arrival time is not content."""
    return [
        field.name
        for field in fields(Report)
        if field.name != "received_at_ms" and getattr(held, field.name) != getattr(report, field.name)
    ]

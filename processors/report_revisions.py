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

Pure and broker-free: reports in, decisions out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Literal

from processors.records import Report

CONFLICTING_REVISION = "conflicting_revision"

Outcome = Literal["new", "correction", "duplicate", "stale", "conflicting"]


@dataclass(frozen=True, slots=True)
class RevisionDecision:
    """What one incoming report did to the reports in force."""

    outcome: Outcome
    effective: Report  # the report in force for this report_id after the decision
    replaced: Report | None = None  # correction: the lower revision it replaces
    error: str = ""  # conflicting: the dead letter's sentence for the sender

    @property
    def accepted(self) -> bool:
        """The incoming report is now in force (new, or a correction)."""
        return self.outcome in ("new", "correction")

    @property
    def reason(self) -> str | None:
        """The dead-letter reason, for a conflicting revision only."""
        return CONFLICTING_REVISION if self.outcome == "conflicting" else None


class ReportRevisions(Mapping[str, Report]):
    """The report in force per ``report_id``: a read-only mapping that ``receive`` updates."""

    def __init__(self) -> None:
        self._effective: dict[str, Report] = {}

    def __getitem__(self, report_id: str) -> Report:
        return self._effective[report_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._effective)

    def __len__(self) -> int:
        return len(self._effective)

    def receive(self, report: Report) -> RevisionDecision:
        """Decide what ``report`` does, and put it in force if it is new or a correction."""
        held = self._effective.get(report.report_id)
        if held is None:
            self._effective[report.report_id] = report
            return RevisionDecision("new", report)
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


def _differing_fields(held: Report, report: Report) -> list[str]:
    """The content fields in which two reports differ; the arrival time is not content."""
    return [
        field.name
        for field in fields(Report)
        if field.name != "received_at_ms" and getattr(held, field.name) != getattr(report, field.name)
    ]

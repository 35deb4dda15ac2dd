"""How urgently an institution should act on a freeze (0-100, higher = act first).

score = 35 x share of the tainted money still in the account
      + 20 x size of that money (log scale, saturating at 1,000,000 major units)
      + 25 x recency: halves for every day between its arrival and the latest report
      + 20 x corroboration: 0 for one report, full at four or more
      - 20 x share that moved on x hop distance / max_hops

Every input is event time or evidence, never the wall clock, so replaying the
same events gives the same priority (and no new action version).
"""

from __future__ import annotations

import math

from schemas.fields import minor_unit_exponent

DAY_MS = 24 * 3600 * 1000


def freeze_priority(
    *,
    remaining: int,
    received: int,
    currency: str,
    hop: int,
    max_hops: int,
    last_arrival_ms: int,
    latest_report_ms: int,
    report_count: int,
) -> int:
    still_here = remaining / received if received > 0 else 0.0
    major_units = remaining / 10 ** minor_unit_exponent(currency)
    size = min(1.0, math.log10(1 + major_units) / 6)
    age_days = max(0, latest_report_ms - last_arrival_ms) / DAY_MS
    recency: float = 0.5**age_days
    corroboration = min(max(report_count - 1, 0), 3) / 3
    distance = min(hop, max_hops) / max_hops if max_hops else 0.0
    score = 35 * still_here + 20 * size + 25 * recency + 20 * corroboration - 20 * (1 - still_here) * distance
    return max(0, min(100, math.floor(score + 0.5)))


def priority_band(priority: int) -> str:
    """Low-cardinality label for metrics and SLAs."""
    if priority >= 80:
        return "critical"
    if priority >= 60:
        return "high"
    if priority >= 40:
        return "medium"
    return "low"

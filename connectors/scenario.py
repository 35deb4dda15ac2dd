"""The scenario file: every parameter of the simulated scam world, in one validated model.

A war room describes its own pattern in a YAML (or JSON) file and replays it with
``interceptor simulate --scenario FILE``; ``connectors/scenarios/thailand.yaml`` is the
default, with the source of every figure next to it. ``pipeline`` in the file overrides
the pipeline's own settings, so the same world can be replayed against a new setting
(a shadow run). ``interceptor simulate --scenario-schema`` prints the JSON Schema.

Durations are written ``90s``, ``3m``, ``18h`` or ``7d`` (a bare number is seconds).
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pipeline.errors import InterceptorError

DEFAULT_SCENARIO = Path(__file__).parent / "scenarios" / "thailand.yaml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ScenarioError(InterceptorError):
    """The scenario file cannot be read or does not describe a world."""


def parse_duration(value: object) -> object:
    """``3m``, ``18h``, ``7d`` or seconds to a timedelta; anything else is left to pydantic."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    return value  # timedelta, or ISO 8601 text: pydantic's own parser decides


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    Field(json_schema_extra={"type": ["string", "number"], "examples": ["3m", "18h", "7d"]}),
]
Share = Annotated[float, Field(ge=0, le=1)]


class Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LogNormal(Part):
    """A positive quantity drawn log-normally: half the draws fall below ``median``."""

    median: float = Field(gt=0)
    sigma: float = Field(ge=0, le=4, description="spread of the logarithm; 0 = always the median")


class DelayDistribution(Part):
    median: Duration
    sigma: float = Field(ge=0, le=4)


class Population(Part):
    banks: list[str] = Field(min_length=1, description="institution codes of the banks")
    ewallet: str = Field(description="the e-wallet provider")
    exchange: str = Field(description="the crypto exchange: gang accounts there hold THB, then USDT")
    people: int = Field(ge=10, description="innocent people, each with one account")
    ewallet_share: Share = Field(description="share of people (and mules) whose account is an e-wallet")
    withdrawals_on_feed: bool = Field(
        default=True,
        description="banks report cash withdrawals (ATM, counter) in their feed, as transfers to a `cash` account",
    )
    opening_balance_thb: LogNormal
    merchants: int = Field(ge=1)
    merchant_popularity: float = Field(gt=0, description="Zipf exponent: a few merchants take most purchases")
    employers: int = Field(ge=1)
    employees_per_employer: LogNormal
    salary_thb: LogNormal


class Background(Part):
    """Innocent traffic, per hour of event time; every transfer is capped by the payer's balance."""

    p2p_per_hour: float = Field(ge=0, description="person to person")
    p2p_thb: LogNormal
    purchases_per_hour: float = Field(ge=0, description="person to merchant")
    purchase_thb: LogNormal
    exchange_per_hour: float = Field(ge=0, description="people buying (and selling) crypto at the exchange")
    exchange_thb: LogNormal
    merchant_payouts_per_hour: float = Field(ge=0, description="merchants paying suppliers and owners")
    merchant_payout_share: Share = Field(description="share of the merchant's balance a payout moves")
    payday_every: Duration = Field(description="how often each employer pays its staff")
    telecom_calls_per_hour: float = Field(ge=0)


class Gangs(Part):
    count: int = Field(ge=1)
    victims_per_day: float = Field(gt=0, description="across all gangs")
    loss_thb: LogNormal = Field(description="what one payment of a victim moves")
    extra_payments: Share = Field(description="share of victims who pay again (investment and romance scams)")
    max_payments: int = Field(ge=1, le=20)
    payments_spread: Duration = Field(description="further payments fall within this after the first")
    receiving_mules: int = Field(ge=1, description="per gang: accounts victims pay into, reused across victims")
    layer_mules: int = Field(ge=2, description="per gang: accounts the money is layered through")
    collectors: int = Field(ge=1, description="per gang: accounts where chains merge")
    crypto_accounts: int = Field(ge=1, description="per gang: accounts at the exchange")
    chain_hops: dict[int, float] = Field(
        description="weight of each chain length: transfers between gang accounts after the victim's payment"
    )
    forward_delay: DelayDistribution = Field(description="how long a mule holds money before passing it on")
    sleeper_share: Share = Field(description="share of hops where the money sits for days instead")
    sleeper_delay: DelayDistribution
    split_share: Share = Field(description="share of hops that split the money over several next mules")
    max_split: int = Field(ge=2, le=10)
    commission: Share = Field(description="share each mule keeps, withdrawn in cash later")
    commission_withdrawal: DelayDistribution
    merge_share: Share = Field(description="share of chains that end in the gang's collector")
    collector_sweep_every: Duration = Field(description="a collector cashes out everything it holds this often")
    cash_out: dict[str, float] = Field(
        description="weight of each way out: atm (cash, on the feed if banks report withdrawals), merchant (goods), "
        "exchange (the exchange's own "
        "bank account: crypto bought), crypto (the gang's own exchange account: THB, then USDT, then on-chain)"
    )
    cash_out_delay: DelayDistribution = Field(description="from the last hop to the cash-out")
    conversion_delay: DelayDistribution = Field(description="THB deposited at the exchange until traded for USDT")
    chain_withdrawal_delay: DelayDistribution = Field(description="USDT bought until withdrawn on-chain")
    usdt_rate_thb: float = Field(gt=0, description="THB per USDT")
    numbers_per_gang: int = Field(ge=1, description="phone numbers a gang calls victims from")
    calls_per_victim: int = Field(ge=1)

    @model_validator(mode="after")
    def _weights(self) -> Self:
        if not self.chain_hops or min(self.chain_hops) < 1 or max(self.chain_hops) > 10:
            raise ValueError("chain_hops: lengths must be 1..10")
        unknown = set(self.cash_out) - {"atm", "merchant", "exchange", "crypto"}
        if unknown:
            raise ValueError(f"cash_out: unknown ways {sorted(unknown)}; use atm, merchant, exchange, crypto")
        for name, weights in (("chain_hops", self.chain_hops), ("cash_out", self.cash_out)):
            if sum(weights.values()) <= 0 or min(weights.values()) < 0:
                raise ValueError(f"{name}: weights must not be negative and must not all be 0")
        return self


class Reports(Part):
    share: Share = Field(description="share of victims who report")
    median_delay: Duration = Field(description="median time from the (last) payment to the report, over all reports")
    fast_share: Share = Field(description="the minority who report within minutes")
    fast_delay: DelayDistribution
    slow_sigma: float = Field(gt=0, le=4, description="spread of the other reports' delays")
    max_delay: Duration = Field(description="later reports are drawn again: the world has to end somewhere")
    phone_share: Share = Field(description="share of reports naming the number that called")


class Institutions(Part):
    """How fast institutions execute a freeze order once it is published (not sent through the pipeline)."""

    execute_delay: dict[str, DelayDistribution] = Field(description="per account kind: bank, ewallet, crypto")
    never_share: dict[str, Share] = Field(description="per account kind: share of orders never executed")


class Scenario(Part):
    """One simulated world: who lives in it, how gangs move money, when victims report."""

    name: str
    seed: int = 0
    attack_days: float = Field(gt=0, le=60, description="victims pay during these days")
    tail_days: float = Field(ge=0, le=60, description="the world runs on this long for late reports")
    population: Population
    background: Background
    gangs: Gangs
    reports: Reports
    institutions: Institutions
    pipeline: dict[str, Any] = Field(
        default_factory=dict,
        description="pipeline settings to run with (trace_window, max_hops, hub_counterparties, history_retention, "
        "hub_accounts, ...): a shadow run of a new setting",
    )

    @property
    def span_ms(self) -> int:
        return int((self.attack_days + self.tail_days) * 86_400_000)

    def scaled(self, factor: float, days: float | None = None) -> Scenario:
        """The same world with ``factor`` times the people and traffic (and ``days`` of attacks): tests and benches."""
        population = self.population.model_copy(
            update={key: max(1, math.ceil(getattr(self.population, key) * factor)) for key in ("people", "merchants")}
        )
        population = population.model_copy(update={"people": max(10, population.people)})
        rates = ("p2p_per_hour", "purchases_per_hour", "exchange_per_hour", "merchant_payouts_per_hour")
        background = self.background.model_copy(
            update={key: getattr(self.background, key) * factor for key in (*rates, "telecom_calls_per_hour")}
        )
        gangs = self.gangs.model_copy(update={"victims_per_day": self.gangs.victims_per_day * factor})
        update: dict[str, Any] = {"population": population, "background": background, "gangs": gangs}
        if days is not None:
            update["attack_days"] = days
        return self.model_copy(update=update)


def load_scenario(path: Path | None = None) -> Scenario:
    """Read a scenario from YAML or JSON (by its suffix); the default one when ``path`` is None."""
    path = path or DEFAULT_SCENARIO
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"cannot read the scenario {path}: {error}") from None
    try:
        if path.suffix == ".json":
            return Scenario.model_validate(json.loads(text))
        import yaml  # only YAML needs it

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(str(error)) from None
        return Scenario.model_validate(data)
    except ValueError as error:  # JSON, YAML and pydantic errors all say where
        raise ScenarioError(f"{path}: {error}") from None


def small_town(seed: int = 3) -> Scenario:
    """The default world shrunk to a small town: one day of attacks, reports within two days. For tests."""
    scenario = load_scenario().scaled(0.1, days=1)
    reports = scenario.reports.model_copy(update={"median_delay": timedelta(hours=6), "max_delay": timedelta(days=2)})
    gangs = scenario.gangs.model_copy(update={"victims_per_day": 80})
    update = {"name": "small-town", "seed": seed, "tail_days": 2.5, "reports": reports, "gangs": gangs}
    return scenario.model_copy(update=update)


def scenario_schema() -> dict[str, Any]:
    return Scenario.model_json_schema()

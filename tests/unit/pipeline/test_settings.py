"""One settings object: environment first, CLI flags over it, frozen."""

from __future__ import annotations

from datetime import timedelta

import pydantic
import pytest

from pipeline.cli import _settings, build_parser
from pipeline.settings import Settings
from pipeline.topics import FREEZE_ACTIONS


def test_environment_is_read_and_flags_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092")
    monkeypatch.setenv("INTERCEPTOR_MAX_HOPS", "6")
    monkeypatch.setenv("INTERCEPTOR_TRACE_WINDOW", "PT48H")
    settings = Settings()
    assert settings.bootstrap_servers == "kafka-1:9092"
    assert settings.max_hops == 6 and settings.trace_window == timedelta(hours=48)
    assert settings.trace.trace_window_ms == 48 * 3600 * 1000

    overridden = settings.with_overrides(bootstrap_servers="other:9092", metrics_port=None)
    assert overridden.bootstrap_servers == "other:9092" and overridden.max_hops == 6


def test_settings_are_frozen_and_checked() -> None:
    settings = Settings()
    with pytest.raises(pydantic.ValidationError):
        settings.max_hops = 9  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Settings(topic_prefix="bad prefix!")


def test_topic_prefix_applies_to_every_topic() -> None:
    assert Settings(topic_prefix="tenant-a.").topic(FREEZE_ACTIONS) == "tenant-a.freeze-actions"


def test_replication_factor_comes_from_the_environment_and_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().replication_factor == 1
    monkeypatch.setenv("INTERCEPTOR_REPLICATION_FACTOR", "3")
    assert Settings().replication_factor == 3
    parser = build_parser()
    assert _settings(parser.parse_args(["topics", "create"])).replication_factor == 3
    assert _settings(parser.parse_args(["topics", "create", "--replication-factor", "2"])).replication_factor == 2
    assert _settings(parser.parse_args(["worker", "--replication-factor", "5"])).replication_factor == 5
    with pytest.raises(pydantic.ValidationError):
        _settings(parser.parse_args(["worker", "--replication-factor", "0"]))

"""The topic catalogue is the one source: the README's table, the JSON Schemas and topic creation follow it."""

from __future__ import annotations

from pathlib import Path

from pipeline.broker import new_topics
from pipeline.topics import (
    FREEZE_ACTIONS,
    SUSPENSION_ACTIONS,
    TOPICS,
    VICTIM_REPORTS,
    addressee_spec,
    catalogue,
    topic_table_markdown,
    wire_models,
)
from schemas.export import export_json_schemas

ROOT = Path(__file__).resolve().parents[3]


def test_readme_topic_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    between = readme.split("<!-- topics:begin", 1)[1].split("<!-- topics:end -->", 1)[0]
    table = between.split("-->\n", 1)[1]
    assert table == topic_table_markdown(), "run `interceptor topics table` and paste it into the README"


def test_committed_json_schemas_are_up_to_date(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path, wire_models())
    for path in written:
        committed = ROOT / "schemas" / "json" / path.name
        assert committed.read_text() == path.read_text(), "run `make schemas` and commit schemas/json"


def test_every_topic_name_key_partitions_and_retention_are_stated() -> None:
    names = [topic.name for topic in TOPICS]
    assert len(set(names)) == len(names)
    for topic in TOPICS:
        assert topic.key and topic.partitions >= 1 and topic.retention_ms > 0
        assert topic.config(1)["cleanup.policy"] in {"compact", "delete"}


def test_addressee_topics_are_safe_names_one_per_institution() -> None:
    from pipeline.topics import addressee_topic

    assert addressee_topic(FREEZE_ACTIONS, "KBANK") == "freeze-actions.kbank"
    assert addressee_topic(FREEZE_ACTIONS, "True Money/TH") == "freeze-actions.true-money-th"
    assert addressee_topic(FREEZE_ACTIONS, "../") == "freeze-actions.unknown"
    assert addressee_topic(FREEZE_ACTIONS, "SCB") != addressee_topic(FREEZE_ACTIONS, "SCBX")


def test_created_topics_carry_the_replication_factor_and_the_catalogue_configs() -> None:
    created = {topic.name: topic for topic in new_topics(TOPICS, "tenant-a.", 3)}
    assert set(created) == {"tenant-a." + spec.name for spec in TOPICS}
    for spec in TOPICS:
        topic = created["tenant-a." + spec.name]
        assert (topic.num_partitions, topic.replication_factor) == (spec.partitions, 3)
        assert topic.topic_configs["retention.ms"] == str(spec.retention_ms)
        assert topic.topic_configs["cleanup.policy"] == ("compact" if spec.compacted else "delete")
        # acks=all guards the output only with a floor of in-sync replicas; partners' inputs get none
        assert topic.topic_configs.get("min.insync.replicas") == ("2" if spec.direction == "out" else None)


def test_min_insync_replicas_is_at_most_two_and_absent_without_replication() -> None:
    assert FREEZE_ACTIONS.config(5)["min.insync.replicas"] == "2"
    assert FREEZE_ACTIONS.config(2)["min.insync.replicas"] == "2"
    assert "min.insync.replicas" not in FREEZE_ACTIONS.config(1)
    assert "min.insync.replicas" not in VICTIM_REPORTS.config(3)
    single = new_topics(TOPICS, "", 1)
    assert all(topic.replication_factor == 1 and "min.insync.replicas" not in topic.topic_configs for topic in single)


def test_per_addressee_topics_are_created_like_their_shared_topic() -> None:
    for spec in (FREEZE_ACTIONS, SUSPENSION_ACTIONS):
        [shared, routed] = new_topics([spec, addressee_spec(spec, "True Money/TH")], "t.", 3)
        assert routed.name == f"t.{spec.name}.true-money-th"
        assert (routed.num_partitions, routed.replication_factor) == (shared.num_partitions, 3)
        assert routed.topic_configs == shared.topic_configs
        assert routed.topic_configs["min.insync.replicas"] == "2"


def test_the_trail_partitions_topics_are_created_only_when_the_trail_is_spread_and_with_its_count() -> None:
    spread = [spec for spec in TOPICS if spec.per_trail_partition]
    assert {spec.name for spec in spread} == {"trail-messages", "trail-holdings", "trail-partition-changelog"}
    assert not any(spec.per_trail_partition for spec in catalogue(0))
    assert len(catalogue(0)) == len(TOPICS) - len(spread)
    sized = {spec.name: spec.partitions for spec in catalogue(6)}
    assert all(sized[spec.name] == 6 for spec in spread)
    assert all(sized[spec.name] == spec.partitions for spec in TOPICS if not spec.per_trail_partition)

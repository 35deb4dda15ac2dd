"""The topic catalogue is the one source: the README's table and the committed JSON Schemas must match it."""

from __future__ import annotations

from pathlib import Path

from pipeline.topics import TOPICS, topic_table_markdown
from schemas.export import export_json_schemas

ROOT = Path(__file__).resolve().parents[3]


def test_readme_topic_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    between = readme.split("<!-- topics:begin", 1)[1].split("<!-- topics:end -->", 1)[0]
    table = between.split("-->\n", 1)[1]
    assert table == topic_table_markdown(), "run `interceptor topics table` and paste it into the README"


def test_committed_json_schemas_are_up_to_date(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path, {topic.name: topic.model for topic in TOPICS})
    for path in written:
        committed = ROOT / "schemas" / "json" / path.name
        assert committed.read_text() == path.read_text(), "run `make schemas` and commit schemas/json"


def test_every_topic_name_key_partitions_and_retention_are_stated() -> None:
    names = [topic.name for topic in TOPICS]
    assert len(set(names)) == len(names)
    for topic in TOPICS:
        assert topic.key and topic.partitions >= 1 and topic.retention_ms > 0
        assert topic.config["cleanup.policy"] in {"compact", "delete"}


def test_addressee_topics_are_safe_names_one_per_institution() -> None:
    from pipeline.topics import FREEZE_ACTIONS, addressee_topic

    assert addressee_topic(FREEZE_ACTIONS, "KBANK") == "freeze-actions.kbank"
    assert addressee_topic(FREEZE_ACTIONS, "True Money/TH") == "freeze-actions.true-money-th"
    assert addressee_topic(FREEZE_ACTIONS, "../") == "freeze-actions.unknown"
    assert addressee_topic(FREEZE_ACTIONS, "SCB") != addressee_topic(FREEZE_ACTIONS, "SCBX")

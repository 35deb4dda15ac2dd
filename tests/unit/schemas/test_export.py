"""One JSON Schema file per topic: valid JSON, documenting what partners send and receive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from schemas.actions import DeadLetter, FreezeAction
from schemas.events import BankTransaction, VictimReport
from schemas.export import export_json_schemas

TOPICS: dict[str, type[BaseModel]] = {
    "victim-reports": VictimReport,
    "bank-transactions": BankTransaction,
    "freeze-actions": FreezeAction,
    "dead-letters": DeadLetter,
}
INPUT_TOPICS = ["victim-reports", "bank-transactions"]
OUTPUT_TOPICS = ["freeze-actions", "dead-letters"]

# Example messages as the contract describes them: what a partner would copy and adapt.
EXAMPLES: dict[str, dict[str, Any]] = {
    "bank-transactions": {
        "txn_id": "KBANK-20261123-000981",
        "from_account": {"institution": "KBANK", "account": "123-4-56789"},
        "to_account": {"institution": "TRUEMONEY", "account": "0812345678", "kind": "ewallet"},
        "amount": "49500.00",
        "currency": "THB",
        "executed_at": "2026-11-23T10:02:11+07:00",
    },
    "victim-reports": {
        "report_id": "TPO-2026-118842",
        "reported_at": "2026-11-23T11:40:00+07:00",
        "victim_id": "V-5521",
        "country": "TH",
        "scam_type": "fake_investment",
        "transfers": [
            {
                "from_account": {"institution": "KBANK", "account": "123-4-56789"},
                "to_account": {"institution": "SCB", "account": "987-6-54321"},
                "amount": 49500,
                "currency": "THB",
                "sent_at": "2026-11-23T10:02:11+07:00",
                "txn_id": "KBANK-20261123-000981",
            }
        ],
        "scammer_phones": ["+66812345678"],
        "scam_urls": ["https://example.invalid/invest"],
    },
    "dead-letters": {
        "source_topic": "bank-transactions",
        "partition": 2,
        "offset": 118,
        "reason": "invalid_event",
        "error": "amount: 10.005 has more decimal places than THB allows (2)",
        "payload": '{"txn_id": "KBANK-1", "amount": 10.005}',
        "payload_encoding": "utf-8",
        "received_at": "2026-11-23T03:02:12.418000Z",
    },
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("schemas") / "json"
    paths = export_json_schemas(directory, TOPICS)
    return dict(zip(TOPICS, paths, strict=True))


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_one_file_per_topic_named_for_the_topic(exported: dict[str, Path]) -> None:
    assert {topic: path.name for topic, path in exported.items()} == {topic: f"{topic}.schema.json" for topic in TOPICS}
    assert sorted(path.name for path in next(iter(exported.values())).parent.iterdir()) == sorted(
        f"{topic}.schema.json" for topic in TOPICS
    )


@pytest.mark.parametrize("topic", TOPICS)
def test_each_file_is_pretty_printed_json_with_sorted_keys_and_a_final_newline(
    exported: dict[str, Path], topic: str
) -> None:
    written = exported[topic].read_text(encoding="utf-8")

    assert written == json.dumps(json.loads(written), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("topic", TOPICS)
def test_each_file_is_a_draft_2020_12_schema_identified_by_its_file_name(exported: dict[str, Path], topic: str) -> None:
    schema = load(exported[topic])

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{topic}.schema.json"
    assert schema["title"] == TOPICS[topic].__name__
    assert schema["type"] == "object"
    assert schema["description"]


@pytest.mark.parametrize(
    ("topic", "required"),
    [
        ("bank-transactions", {"txn_id", "from_account", "to_account", "amount", "currency", "executed_at"}),
        ("victim-reports", {"report_id", "reported_at", "victim_id", "country", "scam_type", "transfers"}),
        ("dead-letters", {"source_topic", "partition", "offset", "reason", "error", "payload", "payload_encoding"}),
    ],
)
def test_required_fields_are_documented(exported: dict[str, Path], topic: str, required: set[str]) -> None:
    assert required <= set(load(exported[topic])["required"])


def test_every_field_of_a_freeze_action_is_required(exported: dict[str, Path]) -> None:
    schema = load(exported["freeze-actions"])

    assert set(schema["required"]) == set(FreezeAction.model_fields)
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(("topics", "mode"), [(INPUT_TOPICS, "validation"), (OUTPUT_TOPICS, "serialization")])
def test_inputs_are_described_as_validated_and_outputs_as_serialized(
    exported: dict[str, Path], topics: list[str], mode: JsonSchemaMode
) -> None:
    for topic in topics:
        schema = load(exported[topic])
        del schema["$schema"], schema["$id"]
        assert schema == TOPICS[topic].model_json_schema(mode=mode)


def test_input_amounts_and_timestamps_are_described_as_partners_write_them(exported: dict[str, Path]) -> None:
    # In serialization mode the epoch-ms timestamp and Decimal amount would leak into the contract.
    properties = load(exported["bank-transactions"])["properties"]

    assert [option["type"] for option in properties["amount"]["anyOf"]] == ["number", "string"]
    assert (properties["executed_at"]["type"], properties["executed_at"]["format"]) == ("string", "date-time")


@pytest.mark.parametrize("topic", EXAMPLES)
def test_the_example_message_is_valid_and_every_field_of_it_is_described(exported: dict[str, Path], topic: str) -> None:
    example = EXAMPLES[topic]
    TOPICS[topic].model_validate_json(json.dumps(example))
    schema = load(exported[topic])

    assert_described(example, schema, schema)


def assert_described(value: object, schema: dict[str, Any], root: dict[str, Any]) -> None:
    """A structural check, for want of a JSON Schema validator: every key described, required ones present."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    if "anyOf" in schema and not isinstance(value, str | int | float):
        (schema,) = [option for option in schema["anyOf"] if option.get("type") != "null"]
    if isinstance(value, dict):
        assert set(schema["required"]) <= value.keys()
        for key, item in value.items():
            assert key in schema["properties"], f"{key} is not described"
            assert_described(item, schema["properties"][key], root)
    elif isinstance(value, list):
        for item in value:
            assert_described(item, schema["items"], root)

"""JSON Schema files for every topic, so partners can check their messages before they send them.

Input topics are described as we validate them (what partners may send); output topics
as we serialize them (what consumers will receive).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from schemas.actions import OutputModel

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def export_json_schemas(directory: Path, topics: Mapping[str, type[BaseModel]]) -> list[Path]:
    """Write ``<topic>.schema.json`` into ``directory`` for each topic; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, model in topics.items():
        path = directory / f"{topic}.schema.json"
        text = json.dumps(topic_json_schema(topic, model), indent=2, sort_keys=True, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    return written


def topic_json_schema(topic: str, model: type[BaseModel]) -> dict[str, object]:
    mode: JsonSchemaMode = "serialization" if issubclass(model, OutputModel) else "validation"
    schema: dict[str, object] = model.model_json_schema(mode=mode)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = f"{topic}.schema.json"
    schema.setdefault("title", model.__name__)
    return schema

"""docs/reference/config.md: every key of the YAML config, walked from the pydantic schema, with an
example taken from the configs shipped under config/ where one sets it."""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from moa_gateway.config.schema import GatewayConfig
from scripts.docgen.fields import description, owner
from scripts.docgen.markdown import (
    GENERATED_NOTE,
    code,
    default_of,
    default_text,
    field_type,
    table,
    value_text,
)
from scripts.docgen.notes import FIELD_EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDERS = {"providers": "<name>", "models": "<alias>", "pipelines": "<id>"}


@dataclass(frozen=True)
class Section:
    path: str  # where the object sits in the file, e.g. `pipelines.<id>.layers[]`
    model: type[BaseModel]
    kind: str | None  # the discriminating `type` of a provider


def _models_in(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """The config objects a field holds, with how the path goes on: `` (the object), `[]`, `.<key>`."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [found for arg in get_args(annotation) for found in _models_in(arg)]
    if origin is list:
        return [("[]" + step, m) for step, m in _models_in(get_args(annotation)[0])]
    if origin is dict:
        return [(".{key}" + step, m) for step, m in _models_in(get_args(annotation)[1])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    return []


def _kind(model: type[BaseModel]) -> str | None:
    """A provider's discriminating `type` value (`openai`, `simulated`); None for other objects."""
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return str(get_args(field.annotation)[0])


def sections(model: type[BaseModel] = GatewayConfig, path: str = "") -> list[Section]:
    """Every object of the config, depth first, each once per path."""
    found = [Section(path, model, _kind(model))]
    for name, field in model.model_fields.items():
        for step, nested in _models_in(field.annotation):
            where = (f"{path}.{name}" if path else name) + step.replace(
                "{key}", PLACEHOLDERS.get(name, "<key>")
            )
            for section in sections(nested, where):
                if section not in found:
                    found.append(section)
    return found


def _examples(model: type[BaseModel], data: Any, out: dict[str, Any]) -> None:
    """First value each key takes in a config file, keyed `Class.field` (its declaring class)."""
    if not isinstance(data, dict):
        return
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None:
            continue
        out.setdefault(owner(model, name), value)
        for step, nested in _models_in(field.annotation):
            kind = _kind(nested)
            items = [value] if step == "" else (value if step.startswith("[]") else None)
            if step.startswith(".{key}"):
                items = list(value.values()) if isinstance(value, dict) else []
            for item in items or []:
                if kind is None or (isinstance(item, dict) and item.get("type") == kind):
                    _examples(nested, item, out)


def shipped_examples() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted((ROOT / "config").rglob("*.yaml")):
        _examples(GatewayConfig, yaml.safe_load(path.read_text()), out)
    return out


def _example(section: Section, name: str, shipped: dict[str, Any]) -> str:
    model = section.model
    key = owner(model, name)
    nested = _models_in(model.model_fields[name].annotation)
    if nested and key not in FIELD_EXAMPLES:  # an object of its own: its keys have their examples
        where = (f"{section.path}.{name}" if section.path else name) + nested[0][0]
        return "see " + code(where.replace("{key}", PLACEHOLDERS.get(name, "<key>")))
    if key in shipped:
        return code(f"{name}: {value_text(shipped[key])}")
    if key in FIELD_EXAMPLES:
        return code(f"{name}: {value_text(FIELD_EXAMPLES[key])}")
    has, value = default_of(model.model_fields[name])
    if has and value not in (None, [], {}) and not isinstance(value, BaseModel):
        return code(f"{name}: {value_text(value)}")
    raise SystemExit(f"{key}: no example; set it in a config under config/ or in scripts/docgen/notes.py")


def render() -> str:
    shipped = shipped_examples()
    out = [
        "# Config file reference\n",
        GENERATED_NOTE,
        "The YAML file the gateway serves, from `--config`, `MOA_CONFIG`, or `config/moa.yaml`. `${VAR}` "
        "and `${VAR:-default}` expand from the environment. A bad file stops the start with a message "
        "naming the file and the field (`config/moa.yaml: pipelines.moa.aggregator: unknown model "
        "'gpt'`); unknown fields are errors, so typos are caught. `moa-gateway check-config PATH` checks "
        "a file without serving it. An annotated example: [Real providers](../guides/real-providers.md).\n",
        "Each table lists one object of the file: the key, its type (with the bounds the gateway "
        "checks), its default (`required` when it has none), what it does, and an example (from the "
        "configs under `config/` where one sets it).\n",
    ]
    for section in sections():
        title = code(section.path) if section.path else "The top level"
        if section.kind is not None:
            title += f" with `type: {section.kind}`"
        out.append(f"## {title}\n")
        doc = (section.model.__doc__ or "").strip()
        # the config's own classes (schema.py and its neighbours in moa_gateway.config), not pydantic's
        if doc and section.model.__module__.startswith("moa_gateway.config.") and section.path:
            out.append(" ".join(doc.split()) + "\n")
        rows = [
            [
                code(name),
                field_type(field),
                default_text(field),
                description(section.model, name, field),
                _example(section, name, shipped),
            ]
            for name, field in section.model.model_fields.items()
        ]
        out.append(table(["key", "type", "default", "description", "example"], rows))
    return "\n".join(out)

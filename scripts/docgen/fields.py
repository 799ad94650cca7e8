"""Where a pydantic field is declared, and its description: the code's own, else a note."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from scripts.docgen.notes import FIELD_NOTES


def owner(cls: type[BaseModel], name: str) -> str:
    """`Class.field` of the class that declares the field (a base class for inherited fields)."""
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            return f"{klass.__name__}.{name}"
    return f"{cls.__name__}.{name}"


def description(cls: type[BaseModel], name: str, field: FieldInfo) -> str:
    key = owner(cls, name)
    if field.description and key in FIELD_NOTES:
        raise SystemExit(f"scripts/docgen/notes.py: {key} has a description in the code now; drop its note")
    text = field.description or FIELD_NOTES.get(key)
    if not text:
        raise SystemExit(f"{key}: no description; add `description=` to the field (or a note)")
    return text

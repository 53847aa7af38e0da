"""Turning a pydantic ValidationError into a message that names each field."""

from __future__ import annotations

import pydantic

__all__ = ["validation_message"]


def validation_message(error: pydantic.ValidationError) -> str:
    """One line per problem, each naming its field: ``field 'a.b': Field required``."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item.get("loc", ())) or "(the data)"
        parts.append(f"field {field!r}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)

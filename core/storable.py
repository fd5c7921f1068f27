"""Text every database can store: U+0000 becomes U+FFFD.

PostgreSQL text cannot hold U+0000, SQLite can; both must store the same thing. Inputs are made
storable where they enter (JSON bodies, query strings), replaced rather than dropped so that
"a\\u0000" and "a" stay two different keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NUL, REPLACEMENT = "\x00", "\ufffd"
JSON_NUL = b"\\u0000"  # the only way a JSON text can carry U+0000 (a raw control character is invalid JSON)


def storable(value: Any) -> Any:
    """`value` (decoded JSON) with U+0000 replaced in every string, keys included."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT)
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    return value


def storable_json(raw: bytes, value: Any) -> Any:
    """`storable(value)` for the JSON `raw` was decoded from; free when `raw` carries no U+0000."""
    return storable(value) if JSON_NUL in raw else value


def storable_query(query: Mapping[str, str]) -> Mapping[str, str]:
    """A query string's values made storable (the mapping itself when none needs it)."""
    if not any(NUL in v for v in query.values()):
        return query
    return storable(dict(query))

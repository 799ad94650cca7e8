"""Simulated embeddings (`POST /v1/embeddings`): a unit vector per input, deterministic in (model, input).

`input` is a string, a list of strings, a token array or a list of token arrays; `dimensions` defaults
to 8; `encoding_format` is `float` (default) or `base64` (little-endian float32, as OpenAI sends it).
The floats are float32 values, so both encodings decode to the same vector.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from moa_gateway.core.tokens import count_tokens
from moa_gateway.sim.choices import BadRequest

DEFAULT_DIMENSIONS = 8
_MAX_DIMENSIONS = 4096
_MAX_INPUTS = 2048


def embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    """The embeddings response for a request body (raises BadRequest for a body OpenAI would refuse)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required")
    dimensions = body.get("dimensions")
    dimensions = DEFAULT_DIMENSIONS if dimensions is None else dimensions
    if (
        not isinstance(dimensions, int)
        or isinstance(dimensions, bool)
        or not 1 <= dimensions <= _MAX_DIMENSIONS
    ):
        raise BadRequest(f"'dimensions' is an integer from 1 to {_MAX_DIMENSIONS}")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest("'encoding_format' is float or base64")
    data, tokens = [], 0
    for index, (key, count) in enumerate(_inputs(body.get("input"))):
        vector = vector_of(model, key, dimensions)
        embedding: Any = vector if encoding == "float" else _base64(vector)
        data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens += count
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def vector_of(model: str, text: str, dimensions: int) -> list[float]:
    """A unit vector of float32 values from a hash of (model, text)."""
    raw = hashlib.shake_256(f"{model}\x1f{text}".encode()).digest(4 * dimensions)
    values = [n / 2**31 - 1.0 for n in struct.unpack(f"<{dimensions}I", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # through float32 and back, so the float list is exactly what the base64 form decodes to
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in values))))


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _inputs(value: Any) -> list[tuple[str, int]]:
    """Each input as (the text its vector is made from, its token count)."""
    if isinstance(value, str) or _is_tokens(value):
        value = [value]
    if not isinstance(value, list) or not value or len(value) > _MAX_INPUTS:
        raise BadRequest(f"'input' is a string, a token array, or a list of 1 to {_MAX_INPUTS} of either")
    inputs = []
    for item in value:
        if isinstance(item, str) and item:
            inputs.append((item, count_tokens(item)))
        elif _is_tokens(item):
            inputs.append(("tokens:" + ",".join(map(str, item)), len(item)))
        else:
            raise BadRequest("each 'input' is a non-empty string or a non-empty array of token ids")
    return inputs


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )

"""Scrubbing configured secrets out of texts that came from (or mention) a provider."""

from __future__ import annotations

# A fragment of a secret shorter than this is not told apart from ordinary text.
_MIN_FRAGMENT = 4


def redact(text: str, secrets: list[str], limit: int | None = None) -> str:
    """`text` with every secret replaced, then cut to `limit` characters.

    Providers echo (part of) a key in their errors, and may cut their own text mid-key: a secret's
    head left at the end of `text`, or its tail at the start, is replaced too. Scrubbing comes before
    the cut, so no cut point can leave part of a key behind.
    """
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
        shortest = min(_MIN_FRAGMENT, len(secret))
        for size in range(len(secret) - 1, shortest - 1, -1):
            if text.endswith(secret[:size]):
                text = text[:-size] + "[redacted]"
                break
        for size in range(len(secret) - 1, shortest - 1, -1):
            if text.startswith(secret[-size:]):
                text = "[redacted]" + text[size:]
                break
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text

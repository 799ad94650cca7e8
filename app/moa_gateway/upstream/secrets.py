"""Scrubbing configured secrets out of texts that came from (or mention) a provider, and the list of
them: every form of every credential the gateway sends."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit
from urllib.request import getproxies

import orjson

# A fragment of a secret shorter than this is not told apart from ordinary text.
_MIN_FRAGMENT = 4


def every_form_of(configured: Iterable[str]) -> list[str]:
    """What must never be shown: the configured secrets (each provider kind names its own) and the
    credentials of the environment's proxies, each in every form the gateway sends it or an echo may
    quote it."""
    return _every_form([*configured, *proxy_secrets()])


def proxy_secrets() -> list[str]:
    """The credentials of the proxies HTTP_PROXY, HTTPS_PROXY and ALL_PROXY (either case) name: both
    upstream clients send them to the proxy as `Proxy-Authorization: Basic ...`."""
    proxies = getproxies()
    return [secret for scheme, url in proxies.items() if scheme != "no" for secret in userinfo_secrets(url)]


def userinfo_secrets(url: str) -> list[str]:
    """The user and password in `url`, alone and paired, as written (percent-encoded) and decoded, and
    the pair's Basic token: UTF-8 (httpx, and base URLs) and Latin-1 (aiohttp's proxy auth)."""
    # A proxy variable may leave out the scheme (`user:pw@host:3128`); the clients read it as http://.
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        raw_user, raw_password = parts.username or "", parts.password or ""
    except ValueError:  # a malformed port: no client sends credentials from it
        return []
    if not raw_user and not raw_password:
        return []
    user, password = unquote(raw_user), unquote(raw_password)
    pair = f"{user}:{password}"
    found = [raw_user, raw_password, user, password, f"{raw_user}:{raw_password}", pair]
    for encoding in ("utf-8", "latin-1"):
        try:
            token = base64.b64encode(pair.encode(encoding)).decode()
        except UnicodeEncodeError:  # not sendable in that encoding: never sent so
            continue
        found += [token, token.rstrip("=")]  # an echo may drop the padding
    return found


def _every_form(secrets: Iterable[str]) -> list[str]:
    """Each secret as it is, percent-encoded (an echoed URL) and JSON-escaped (an echoed JSON body),
    without duplicates; a short one is not told apart from ordinary text."""
    found: list[str] = []
    for secret in secrets:
        found += [secret, quote(secret, safe=""), orjson.dumps(secret).decode()[1:-1]]
    return [secret for secret in dict.fromkeys(found) if len(secret) >= _MIN_FRAGMENT]


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

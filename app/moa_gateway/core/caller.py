"""Who sent a request, as every per-caller store sees it (stored responses now, the response cache
next): a name derived from the gateway key that matched, never the key, or one shared anonymous name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Domain separation: the caller id is not the key's digest that `auth.api_key_sha256` holds in the config.
_CALLER_SALT = b"moa-gateway caller\x00"


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller's identity: `id` is safe to store and to log (it reveals neither the key nor its digest),
    and the same for a key on every worker and replica, so shared stores agree on who owns an entry."""

    id: str

    @classmethod
    def of_key_digest(cls, digest: bytes) -> Caller:
        """The caller holding the key whose SHA-256 digest is `digest` (64 bits of a hash of it)."""
        return cls("key-" + hashlib.sha256(_CALLER_SALT + digest).hexdigest()[:16])


# With no gateway keys configured, every request is this one caller: all of them share one namespace.
ANONYMOUS = Caller("anonymous")

"""Which requests the request guards (admission, request metrics, traces, after-response work) apply to:
every POST under /v1/. A rule rather than a list of paths kept by hand, so a new endpoint that takes a
body to the models cannot be left out (as /v1/embeddings once was): it is guarded by being one.

A POST to an unknown /v1/ path is guarded too: its body is capped before the 404, and it is counted
(model `unknown`). The GETs and DELETEs under /v1/ read no body and call no model: not guarded."""

from __future__ import annotations

from typing import Final

from starlette.types import Scope

GUARDED_METHOD: Final = "POST"
GUARDED_PREFIX: Final = "/v1/"


def guarded(scope: Scope) -> bool:
    """Whether the request gets the guards: an HTTP POST under /v1/."""
    path: str = scope["path"] if scope["type"] == "http" else ""
    return scope.get("method") == GUARDED_METHOD and path.startswith(GUARDED_PREFIX)

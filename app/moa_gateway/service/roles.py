"""A chat backend whose every call is counted under one role (`shadow`, `judge`) in the metrics, logs
and cost: the calls of a shadow evaluation or an eval's judge, told apart from the client's traffic."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

from moa_gateway.core.ports import ChatBackend
from moa_gateway.core.types import Answer, CallSpec, Delta, Role


class RoleTagged:
    """Implements ChatBackend over another one, with `role` on every call."""

    def __init__(self, backend: ChatBackend, role: Role) -> None:
        self._backend = backend
        self._role = role

    def admit(self, model: str) -> bool:
        return self._backend.admit(model)

    def call(self, spec: CallSpec, *args: Any, **kwargs: Any) -> AsyncGenerator[Delta | Answer, None]:
        return self._backend.call(replace(spec, role=self._role), *args, **kwargs)

"""Embeddings as a use case: a model alias forwards to its provider; a pipeline does not embed."""

from __future__ import annotations

from typing import Any, Protocol

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import Catalogue, quoted
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.types import Answer
from moa_gateway.wire.requests import EmbeddingsRequest


class EmbeddingsBackend(Protocol):
    async def embed(
        self, alias: str, body: dict[str, Any], context: RunContext
    ) -> tuple[dict[str, Any], Answer]: ...


class EmbeddingsService:
    def __init__(self, backend: EmbeddingsBackend, catalogue: Catalogue, retry_budget: int) -> None:
        self._backend = backend
        self._catalogue = catalogue
        self._retry_budget = retry_budget

    def model_of(self, request: EmbeddingsRequest) -> str:
        """The model alias the request names; raises Failure (400 for a pipeline, 404 for an unknown
        model). Checked before any call, so the alias is a config name, safe as a metric label."""
        model = request.model
        if model in self._catalogue.pipelines:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"{quoted(model)} is a pipeline, and pipelines do not embed: name an embedding model",
                param="model",
            )
        if model not in self._catalogue.models:
            raise Failure(
                FailureKind.MODEL_NOT_FOUND, f"The model {quoted(model)} does not exist", param="model"
            )
        return model

    async def embed(self, request: EmbeddingsRequest) -> tuple[dict[str, Any], Answer]:
        """The provider's embeddings for the request, with the call's usage and cost; raises Failure
        (as `model_of` does, the provider's failure otherwise)."""
        model = self.model_of(request)
        body = request.model_dump(exclude_unset=True, exclude={"model"})
        context = RunContext(RetryBudget(self._retry_budget))
        return await self._backend.embed(model, body, context)

"""The eval's answer cache: one JSON line per answer, keyed by (model, its config, the conversation), so
an interrupted run resumes where it stopped and a rerun with another judge or baseline calls only what
is new. Lines are appended as answers arrive; a line cut by a kill is skipped on the next read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from moa_gateway.config import GatewayConfig
from moa_gateway.core.types import Message
from moa_gateway.eval.answers import Answered, Answerer


class AnswerCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, Answered] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._entries[entry["key"]] = Answered(
                        entry["text"],
                        entry["cost_usd"],
                        entry["prompt_tokens"],
                        entry["completion_tokens"],
                        entry["latency_s"],
                        cached=True,
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by an interruption
        path.parent.mkdir(parents=True, exist_ok=True)
        # A line cut short must not swallow the next one: start on a fresh line.
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with path.open("a", encoding="utf-8") as file:
                file.write("\n")

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Answered | None:
        return self._entries.get(key)

    def put(self, key: str, model: str, answered: Answered) -> None:
        entry = {
            "key": key,
            "model": model,
            "text": answered.text,
            "cost_usd": answered.cost_usd,
            "prompt_tokens": answered.prompt_tokens,
            "completion_tokens": answered.completion_tokens,
            "latency_s": answered.latency_s,
        }
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._entries[key] = answered


def cache_key(model: str, fingerprint: str, messages: list[Message]) -> str:
    raw = json.dumps([model, fingerprint, messages], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


class CachedAnswerer:
    """An Answerer that answers from the cache when it can, and caches every new answer.
    `fingerprint(model)` names what else decides the answer (the model's config), so a changed
    config misses the cache."""

    def __init__(self, inner: Answerer, cache: AnswerCache, fingerprint: Callable[[str], str]) -> None:
        self._inner = inner
        self._cache = cache
        self._fingerprint = fingerprint

    async def answer(self, model: str, messages: list[Message]) -> Answered:
        key = cache_key(model, self._fingerprint(model), messages)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        answered = await self._inner.answer(model, messages)
        self._cache.put(key, model, answered)
        return answered


def config_fingerprint(config: GatewayConfig) -> Callable[[str], str]:
    """`fingerprint(model)` for the cache: the model's config, or a pipeline's with its models' (their
    upstream names, params and prices); no provider secrets."""

    def model_part(alias: str) -> object:
        model = config.models.get(alias)
        return model.model_dump(mode="json") if model is not None else None

    def fingerprint(model_id: str) -> str:
        pipeline = config.pipelines.get(model_id)
        if pipeline is None:
            return json.dumps(model_part(model_id), sort_keys=True)
        aliases = {a for layer in pipeline.layers for a in layer.proposers}
        aliases |= {pipeline.aggregator, *pipeline.aggregator_fallbacks}
        parts = {
            "pipeline": pipeline.model_dump(mode="json", exclude={"shadow"}),
            "models": {a: model_part(a) for a in sorted(aliases)},
        }
        return json.dumps(parts, sort_keys=True)

    return fingerprint

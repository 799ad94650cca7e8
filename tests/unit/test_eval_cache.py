"""The eval's answer cache survives an interruption mid-write, and a changed model config misses it."""

from __future__ import annotations

from pathlib import Path

from moa_gateway.config import parse_config
from moa_gateway.eval.answers import Answered
from moa_gateway.eval.cache import AnswerCache, cache_key, config_fingerprint

ASK = [{"role": "user", "content": "hi"}]


def test_a_line_cut_by_an_interruption_is_skipped_and_does_not_swallow_the_next(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    cache = AnswerCache(path)
    cache.put("k1", "m", Answered("one", 0.1, 1, 2, 0.5))
    with path.open("a") as file:
        file.write('{"key": "k2", "text": "cut sho')  # killed mid-write

    reopened = AnswerCache(path)
    reopened.put("k3", "m", Answered("three", 0.3, 3, 4, 0.7))
    again = AnswerCache(path)

    assert len(again) == 2 and again.get("k2") is None
    assert again.get("k1") == Answered("one", 0.1, 1, 2, 0.5, cached=True)
    third = again.get("k3")
    assert third is not None and third.text == "three"


def test_the_key_changes_with_the_model_its_config_and_the_conversation() -> None:
    def fingerprint(temperature: float) -> str:
        data = {
            "providers": {"sim": {"type": "simulated"}},
            "models": {m: {"provider": "sim", "params": {"temperature": temperature}} for m in ["a", "b"]},
            "pipelines": {"moa": {"layers": [{"proposers": ["a"]}], "aggregator": "b"}},
        }
        return config_fingerprint(parse_config(data, "test"))("moa")

    base = cache_key("moa", fingerprint(0.7), ASK)

    assert base == cache_key("moa", fingerprint(0.7), ASK)
    assert base != cache_key("moa", fingerprint(0.2), ASK)  # a proposer's params changed
    assert base != cache_key("moa-2", fingerprint(0.7), ASK)
    assert base != cache_key("moa", fingerprint(0.7), [{"role": "user", "content": "hello"}])

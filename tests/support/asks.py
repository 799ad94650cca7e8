"""The questions tests ask, one definition each (typed `list[Any]`: any messages parameter takes them)."""

from __future__ import annotations

from typing import Any

SKY = "Why is the sky blue?"
ASK: list[Any] = [{"role": "user", "content": SKY}]
ASK_CAPITAL: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
ASK_WEATHER: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]

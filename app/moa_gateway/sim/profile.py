"""A simulated model's behaviour (`SimProfile`: timing, length, faults, agent options), read from the
simulator's defaults and a request's `simulate` object, and the fault counter behind `fault_count`.
Described in app/moa_gateway/sim/core.py."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

FAULTS = (
    "hang",
    "error_500",
    "error_503",
    "rate_limit",
    "reset",
    "non_json",
    "empty_choices",
    "trickle",
    "malformed_usage",
    "oversized_body",
    "truncated_stream",
    "endless_trickle",
)
# Faults in what a 200 answer says rather than in how it arrives (not in FAULTS: the fault matrix of the
# transport does not apply). schema_invalid: JSON that breaks the request's `response_format`.
ANSWER_FAULTS = ("schema_invalid",)


class SimulatorRequestError(ValueError):
    """The request body is not a chat completion request."""


class FaultCounter:
    """How many requests each `fault_key` has seen, for faults limited by `fault_count`."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def next(self, key: str) -> int:
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        return seen


@dataclass(frozen=True)
class SimProfile:
    ttft_ms: float = 150.0
    tokens_per_s: float = 200.0
    output_tokens: int | None = None
    fault: str | None = None
    fault_count: int | None = None
    fault_key: str = ""
    retry_after_s: float = 1.0
    oversize_bytes: int = 17 * 1024 * 1024
    reasoning: bool = False  # answers carry `reasoning_content` (as if `reasoning_effort` were sent)
    think_tags: bool = False  # the content starts with <think>reasoning</think>, as raw R1 distills
    answer: str | None = None  # the text of choice 0, instead of a generated one
    context_window: int | None = None  # tokens: a longer request gets a 400 context_length_exceeded
    tool_rounds: int = 1  # with tools offered: tool calls made in a user turn before answering text
    agree: float = 0.0  # the chance of giving the common answer every agreeing model gives, not its own
    confidence: float | str | None = (
        None  # a gate's reported confidence, when asked (app/moa_gateway/sim/gate.py)
    )
    agreement: float | None = None  # how likely a seeded sample gives the shared answer (sim/gate.py)
    judge_delay_ms: float = 0.0  # added to the time to first token of a judge's verdict (a slow judge)

    def override(self, body: dict[str, Any]) -> SimProfile:
        options = body.get("simulate")
        if not isinstance(options, dict):
            return self
        fault = options.get("fault", self.fault)
        if fault is not None and fault not in FAULTS and fault not in ANSWER_FAULTS:
            raise SimulatorRequestError(f"'simulate.fault' is one of {', '.join(FAULTS + ANSWER_FAULTS)}")
        flags = {name: options.get(name, getattr(self, name)) for name in ("reasoning", "think_tags")}
        if not all(isinstance(flag, bool) for flag in flags.values()):
            raise SimulatorRequestError("'simulate.reasoning' and 'simulate.think_tags' are booleans")
        answer = options.get("answer", self.answer)
        if answer is not None and not isinstance(answer, str):
            raise SimulatorRequestError("'simulate.answer' is a string")
        window = options.get("context_window", self.context_window)
        if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window < 1):
            raise SimulatorRequestError("'simulate.context_window' is a positive integer (tokens)")
        rounds = options.get("tool_rounds", self.tool_rounds)
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            raise SimulatorRequestError("'simulate.tool_rounds' is a positive integer")
        agree = options.get("agree", self.agree)
        if isinstance(agree, bool) or not isinstance(agree, int | float) or not 0 <= agree <= 1:
            raise SimulatorRequestError("'simulate.agree' is a number from 0 to 1")
        confidence = options.get("confidence", self.confidence)
        if isinstance(confidence, bool) or not (
            confidence is None or isinstance(confidence, str) or _within(confidence)
        ):
            raise SimulatorRequestError("'simulate.confidence' is a number from 0 to 1, or a string")
        agreement = options.get("agreement", self.agreement)
        if agreement is not None and (isinstance(agreement, bool) or not _within(agreement)):
            raise SimulatorRequestError("'simulate.agreement' is a number from 0 to 1")
        try:
            return replace(
                self,
                ttft_ms=max(0.0, float(options.get("ttft_ms", self.ttft_ms))),
                tokens_per_s=max(0.0, float(options.get("tokens_per_s", self.tokens_per_s))),
                output_tokens=_optional_int(options.get("output_tokens", self.output_tokens)),
                fault=fault,
                fault_count=_optional_int(options.get("fault_count", self.fault_count)),
                fault_key=str(options.get("fault_key", self.fault_key)),
                retry_after_s=max(0.0, float(options.get("retry_after_s", self.retry_after_s))),
                oversize_bytes=max(0, int(options.get("oversize_bytes", self.oversize_bytes))),
                answer=answer,
                context_window=window,
                tool_rounds=rounds,
                agree=float(agree),
                confidence=confidence,
                agreement=agreement,
                judge_delay_ms=max(0.0, float(options.get("judge_delay_ms", self.judge_delay_ms))),
                **flags,
            )
        except (TypeError, ValueError):
            raise SimulatorRequestError(
                "'simulate' holds numbers: ttft_ms, tokens_per_s, output_tokens, oversize_bytes, "
                "judge_delay_ms"
            ) from None

    def active_fault(self, counter: FaultCounter) -> str | None:
        if self.fault is None or self.fault_count is None:
            return self.fault
        return self.fault if counter.next(self.fault_key) < self.fault_count else None


def _optional_int(value: Any) -> int | None:
    return None if value is None else max(0, int(value))


def _within(value: Any) -> bool:
    return isinstance(value, int | float) and 0 <= value <= 1

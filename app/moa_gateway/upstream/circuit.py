"""Per-model circuit breakers: a model that keeps failing is skipped for a cool-down, then tried once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from moa_gateway.config import CircuitBreakerConfig

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, config: CircuitBreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._trial_in_flight or self._clock() - self._opened_at >= self._config.cooldown_s:
            return "half_open"
        return "open"

    def admit(self) -> bool:
        """May a call go now? After the cool-down, exactly one trial call is admitted."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        """Returns nothing; opens the breaker at the threshold, or again when the trial call failed."""
        self._failures += 1
        threshold = self._config.failure_threshold
        if threshold and (self._trial_in_flight or self._failures >= threshold):
            self._opened_at = self._clock()
        self._trial_in_flight = False

    def release_trial(self) -> None:
        """The trial call was cancelled: it proved nothing, let another one try."""
        self._trial_in_flight = False

"""Circuit breakers on a fake clock: open after repeated failures, one trial after the cool-down."""

from __future__ import annotations

from moa_gateway.config import CircuitBreakerConfig
from moa_gateway.upstream.circuit import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(circuit: CircuitBreaker) -> str:
    return circuit.state  # read afresh each time (mypy would narrow a repeated attribute)


def breaker(threshold: int = 3, cooldown_s: float = 10.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(
        CircuitBreakerConfig(failure_threshold=threshold, cooldown_s=cooldown_s), clock
    ), clock


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    circuit, _ = breaker(threshold=3)

    for _ in range(2):
        circuit.record_failure()
    assert state(circuit) == "closed" and circuit.admit()
    circuit.record_failure()

    assert state(circuit) == "open"
    assert not circuit.admit()


def test_a_success_resets_the_count() -> None:
    circuit, _ = breaker(threshold=3)

    circuit.record_failure()
    circuit.record_failure()
    circuit.record_success()
    circuit.record_failure()
    circuit.record_failure()

    assert state(circuit) == "closed"


def test_after_the_cooldown_exactly_one_trial_is_admitted() -> None:
    circuit, clock = breaker(threshold=1, cooldown_s=10)
    circuit.record_failure()

    clock.now += 9.9
    assert not circuit.admit()
    clock.now += 0.2

    assert state(circuit) == "half_open"
    assert circuit.admit()
    assert not circuit.admit(), "only one trial call at a time"


def test_a_successful_trial_closes_the_circuit() -> None:
    circuit, clock = breaker(threshold=1)
    circuit.record_failure()
    clock.now += 11
    assert circuit.admit()

    circuit.record_success()

    assert state(circuit) == "closed" and circuit.admit() and circuit.admit()


def test_a_failed_trial_reopens_for_a_new_cooldown() -> None:
    circuit, clock = breaker(threshold=5, cooldown_s=10)
    for _ in range(5):
        circuit.record_failure()
    clock.now += 11
    assert circuit.admit()

    circuit.record_failure()  # one failure is enough while half-open

    assert state(circuit) == "open"
    clock.now += 9
    assert not circuit.admit()
    clock.now += 2
    assert circuit.admit()


def test_a_cancelled_trial_lets_another_one_through() -> None:
    circuit, clock = breaker(threshold=1)
    circuit.record_failure()
    clock.now += 11
    assert circuit.admit()

    circuit.release_trial()

    assert circuit.admit()


def test_threshold_zero_never_opens() -> None:
    circuit, _ = breaker(threshold=0)

    for _ in range(100):
        circuit.record_failure()

    assert state(circuit) == "closed" and circuit.admit()

"""Telemetry: Prometheus metrics, log lines, and the core's CallObserver over both."""

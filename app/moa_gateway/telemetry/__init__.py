"""Telemetry: Prometheus metrics, log lines, the core's CallObserver over both, and optional
OpenTelemetry traces."""

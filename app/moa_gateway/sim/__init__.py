"""Offline OpenAI-compatible models: deterministic answers with realistic timing, no network, no keys."""

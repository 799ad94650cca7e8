"""Structured outputs: the checks of answers against a client's `response_format` schema, with bounded
work. checker.py is the entry point; limits.py says what is refused, processes.py where and for how
long the rest runs, worker.py is that process (this file imports nothing, so it starts quickly)."""

"""The MoA core: plan, run and collect a Mixture-of-Agents run as a stream of typed events.

No FastAPI, httpx or aiohttp here, and no import of any other part of `app/`: adapters (the upstream
backend, telemetry, the HTTP edge) depend on these types, never the reverse.
"""

"""Pure-ASGI middleware, one per module (no `@app.middleware("http")`: that buffers streams and hides
disconnects)."""

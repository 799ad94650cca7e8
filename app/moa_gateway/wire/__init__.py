"""The OpenAI wire format both ways: request models, response and chunk bodies, SSE framing, error
bodies and the mapping of failures to HTTP statuses. Used by the routes, the upstream client and the
simulator alike."""

"""moa-gateway: an OpenAI-compatible HTTP gateway that runs every chat completion as a Mixture-of-Agents."""

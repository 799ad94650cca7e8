"""The HTTP routes, thin: parse, call the service, pick the response class."""

"""Use cases free of HTTP: what the routes, a CLI command or a playground call to get work done."""

"""Repository scripts run as modules (`python -m scripts.gen_reference`)."""

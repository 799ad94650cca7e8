"""Shared test factories and servers: configs, real servers on loopback ports, metric scrapes, faults.
Test modules and `bench/` import from here; nothing imports a conftest or another test module."""

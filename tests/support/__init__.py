"""Helpers shared by the integration tests: accounts, HTTP clients."""

"""Helpers shared by the test suite (importable because pytest runs from the repository root)."""

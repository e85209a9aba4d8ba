"""Fixtures shared by the process tests (defined beside the first tests that used them)."""

from tests.process.test_serve import server, state_dir

__all__ = ["server", "state_dir"]

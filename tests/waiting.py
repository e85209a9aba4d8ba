"""Waiting for something a real peer does, bounded in time (never a bare sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(
    check: Callable[..., object], what: str = "condition", *, timeout: float = 5.0
) -> None:
    """Waits (polling every 20 ms) until ``check()`` is true; fails after ``timeout`` s.
    (``...``: a lambda may bind loop variables as defaults; it is called with none.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        await asyncio.sleep(0.02)

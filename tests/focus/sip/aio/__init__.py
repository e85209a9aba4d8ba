"""Tests of focus/sip/aio: the asyncio adapters on real loopback sockets."""

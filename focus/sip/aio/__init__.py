"""focus/sip/aio: the asyncio adapters of the sans-IO SIP stack (see focus/sip/README.md)."""

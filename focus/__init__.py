"""The SIP conference focus and factory (RFC 4579) and the one conference core it shares."""

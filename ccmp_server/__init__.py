"""The CCMP server (RFC 6503) over HTTP."""

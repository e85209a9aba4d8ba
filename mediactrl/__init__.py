"""Media control: the RFC 6230 control framework, the RFC 6505 mixer package, a bundled media server."""

"""Media control: RFC 6230 control framework, RFC 6505 mixer package, a bundled media server."""

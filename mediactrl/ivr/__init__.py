"""msc-ivr/1.0 (RFC 6231), the DTMF part: model and codec."""

from mediactrl.ivr.codec import CONTENT_TYPE, NAMESPACE, PACKAGE, IvrDecodeError, decode, encode

__all__ = ["CONTENT_TYPE", "NAMESPACE", "PACKAGE", "IvrDecodeError", "decode", "encode"]

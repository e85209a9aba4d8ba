"""The msc-mixer/1.0 control package (RFC 6505): model (``model``) and lxml codec (``codec``)."""

from mediactrl.mixer.codec import (
    CONTENT_TYPE,
    NAMESPACE,
    PACKAGE,
    DecodeLimits,
    MixerDecodeError,
    decode,
    encode,
)
from mediactrl.mixer.model import MixerMessage, MixerStatus

__all__ = [
    "CONTENT_TYPE",
    "NAMESPACE",
    "PACKAGE",
    "DecodeLimits",
    "MixerDecodeError",
    "MixerMessage",
    "MixerStatus",
    "decode",
    "encode",
]

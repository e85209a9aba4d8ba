"""The XCON conference object (RFC 6501): typed model, XML codec, partial-update merge.

* :mod:`focus.xcon.model` - frozen dataclasses for every element;
* :mod:`focus.xcon.codec` - lxml encoding/decoding (``XconDecodeError``);
* :mod:`focus.xcon.merge` - applying a partial document (CCMP update);
* :mod:`focus.xcon.safexml` - the hardened parser every untrusted body goes through.
"""

from focus.xcon.codec import (
    XconDecodeError,
    conference_info_to_bytes,
    parse_conference_info,
    parse_element,
    parse_sidebars_by_ref,
    parse_uris,
    parse_user,
    parse_users,
    serialize_conference_info,
    serialize_element,
    serialize_sidebars_by_ref,
    serialize_uris,
    serialize_user,
    serialize_users,
    user_to_bytes,
)
from focus.xcon.merge import merge, merge_user, strip_state
from focus.xcon.safexml import XmlError, parse_xml

__all__ = [
    "XconDecodeError",
    "XmlError",
    "conference_info_to_bytes",
    "merge",
    "merge_user",
    "parse_conference_info",
    "parse_element",
    "parse_sidebars_by_ref",
    "parse_uris",
    "parse_user",
    "parse_users",
    "parse_xml",
    "serialize_conference_info",
    "serialize_element",
    "serialize_sidebars_by_ref",
    "serialize_uris",
    "serialize_user",
    "serialize_users",
    "strip_state",
    "user_to_bytes",
]

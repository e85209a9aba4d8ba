"""A hardened XML parser for every untrusted body the server reads.

Conference documents arrive from CCMP clients and SIP peers we do not
trust, so parsing must never expand entities, touch the network, read a
DTD or grow without bound.  Every check here fails with an ``XmlError``
whose message says what was wrong with the *peer's* input, so a front end
can answer 400 (CCMP) or 400/415 (SIP) with that text.
"""

from __future__ import annotations

import codecs
import re
import threading

from lxml import etree

__all__ = ["SUPPORTED_ENCODINGS", "XmlError", "parse_xml"]


class XmlError(ValueError):
    """The peer sent XML we refuse to process; the message says why.

    The fault is always the remote side's: answer with a client error
    (CCMP 400, SIP 400) quoting ``str(err)``.
    """


#: Encodings accepted in the XML declaration.  UTF-8 and UTF-16 are the two
#: every XML processor must support; US-ASCII and ISO-8859-1 are common
#: in the wild and unambiguous.  Anything else is refused rather than guessed.
SUPPORTED_ENCODINGS = frozenset({"utf-8", "utf-16", "us-ascii", "ascii", "iso-8859-1", "latin1"})

_XML_DECL = re.compile(
    rb"""^<\?xml\s+version\s*=\s*["'][^"']*["']"""
    rb"""(?:\s+encoding\s*=\s*["'](?P<enc>[A-Za-z0-9._-]*)["'])?"""
)
# Markup that only a DTD can introduce; we refuse it before libxml2 sees it.
_DTD_MARKUP = re.compile(r"<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)")


def _decode(data: bytes) -> str:
    """Decode ``data`` strictly, honouring a BOM or the XML declaration."""
    if data.startswith(codecs.BOM_UTF32_LE) or data.startswith(codecs.BOM_UTF32_BE):
        raise XmlError("unsupported encoding: UTF-32 (use UTF-8)")
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        encoding, body = "utf-16", data
    else:
        match = _XML_DECL.match(data)
        declared = match.group("enc") if match else None
        encoding = declared.decode("ascii").lower() if declared else "utf-8"
        body = data
        if encoding == "utf-16":
            raise XmlError("unsupported encoding: UTF-16 declared without a byte order mark")
        if encoding not in SUPPORTED_ENCODINGS:
            raise XmlError(f"unsupported encoding: {encoding!r} (use UTF-8)")
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise XmlError(
            f"undecodable XML: byte {exc.start} is not valid {encoding.upper()}"
        ) from None


_PARSERS = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers are reusable but not shareable between threads.
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = _make_parser()
    return parser


def _make_parser() -> etree.XMLParser:
    # The document is handed to libxml2 re-encoded as UTF-8 (see parse_xml),
    # so the encoding is forced here and any declaration is overridden.
    return etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        remove_comments=True,
        collect_ids=False,
    )


def parse_xml(
    data: bytes,
    *,
    max_bytes: int = 1_000_000,
    max_depth: int = 64,
    max_elements: int = 100_000,
) -> etree._Element:
    """Parse untrusted ``data`` into an element tree, or raise ``XmlError``.

    Refused: more than ``max_bytes`` bytes, an undecodable byte sequence or
    an encoding outside ``SUPPORTED_ENCODINGS``, any DOCTYPE or other DTD
    markup (which rules out billion-laughs and external entities), entity
    references other than the five predefined ones, text that is not
    well-formed, element nesting deeper than ``max_depth`` (the root is
    depth 1) and more than ``max_elements`` elements.  Comments and
    processing instructions are dropped.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_xml() wants bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise XmlError(f"XML document too large: {len(data)} bytes, limit is {max_bytes}")
    if not data.strip():
        raise XmlError("not well-formed XML: the document is empty")
    text = _decode(data)
    dtd = _DTD_MARKUP.search(text)
    if dtd is not None:
        raise XmlError(f"DTDs are not allowed: found {dtd.group(0)!r} markup")
    try:
        root = etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc:
        message = str(exc.msg or exc)
        if "depth" in message.lower():
            raise XmlError(f"XML nested too deeply (limit {max_depth} levels)") from None
        if "entity" in message.lower():
            raise XmlError(f"undefined entity in XML: {message}") from None
        raise XmlError(f"not well-formed XML: {message}") from None
    if root is None:
        raise XmlError("not well-formed XML: no root element")
    _check_shape(root, max_depth=max_depth, max_elements=max_elements)
    return root


def _check_shape(root: etree._Element, *, max_depth: int, max_elements: int) -> None:
    # Level by level: cheaper than walking start/end events one by one.
    depth = 0
    count = 0
    level = [root]
    while level:
        depth += 1
        count += len(level)
        if depth > max_depth:
            raise XmlError(f"XML nested too deeply: more than {max_depth} levels")
        if count > max_elements:
            raise XmlError(f"XML has too many elements: more than {max_elements}")
        level = [child for el in level for child in el]

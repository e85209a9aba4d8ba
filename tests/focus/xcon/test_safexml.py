"""Hostile and malformed inputs for the hardened XML parser."""

from __future__ import annotations

import pytest

from focus.xcon.safexml import XmlError, parse_xml

NS = "urn:ietf:params:xml:ns:conference-info"


def test_parses_a_plain_document() -> None:
    root = parse_xml(b'<?xml version="1.0"?><conference-info xmlns="%s" entity="x"/>' % NS.encode())
    assert root.tag == f"{{{NS}}}conference-info"
    assert root.get("entity") == "x"


def test_keeps_predefined_and_character_entities() -> None:
    root = parse_xml(b"<a>&lt;&amp;&#65;&#x42;</a>")
    assert root.text == "<&AB"


def test_drops_comments_and_processing_instructions() -> None:
    root = parse_xml(b"<a><!-- c --><?pi x?><b/>t<!-- d -->u</a>")
    assert [c.tag for c in root] == ["b"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE foo SYSTEM "http://127.0.0.1:9/evil.dtd"><foo/>"""

PARAMETER_ENTITY = b"""<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><d/>"""


@pytest.mark.parametrize(
    "data", [BILLION_LAUGHS, XXE, EXTERNAL_DTD, PARAMETER_ENTITY, b"<!DOCTYPE a><a/>"]
)
def test_refuses_any_dtd(data: bytes) -> None:
    with pytest.raises(XmlError, match="DTDs are not allowed"):
        parse_xml(data)


def test_refuses_undefined_entity() -> None:
    with pytest.raises(XmlError, match="entity"):
        parse_xml(b"<a>&xxe;</a>")


@pytest.mark.parametrize(
    "data",
    [b"<a>", b"<a></b>", b"<a/><b/>", b"just text", b"<a x='1' x='2'/>", b"<a:b/>", b"\x00<a/>"],
)
def test_refuses_malformed(data: bytes) -> None:
    with pytest.raises(XmlError, match=r"well-formed|undecodable"):
        parse_xml(data)


def test_refuses_empty() -> None:
    with pytest.raises(XmlError, match="empty"):
        parse_xml(b"  \n")


def test_refuses_too_large() -> None:
    with pytest.raises(XmlError, match="too large"):
        parse_xml(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)


def test_refuses_too_deep() -> None:
    deep = b"<a>" * 65 + b"</a>" * 65
    with pytest.raises(XmlError, match="too deeply"):
        parse_xml(deep)
    assert parse_xml(b"<a>" * 64 + b"</a>" * 64) is not None


def test_refuses_libxml2_depth_bomb() -> None:
    bomb = b"<a>" * 5000 + b"</a>" * 5000
    with pytest.raises(XmlError, match="too deeply"):
        parse_xml(bomb)


def test_refuses_too_many_elements() -> None:
    wide = b"<a>" + b"<b/>" * 20 + b"</a>"
    with pytest.raises(XmlError, match="too many elements"):
        parse_xml(wide, max_elements=20)
    assert len(parse_xml(wide, max_elements=21)) == 20


def test_refuses_invalid_utf8() -> None:
    with pytest.raises(XmlError, match="undecodable"):
        parse_xml(b"<a>\xff\xfe\xfa</a>")


def test_refuses_unsupported_encoding() -> None:
    with pytest.raises(XmlError, match="unsupported encoding"):
        parse_xml(b'<?xml version="1.0" encoding="EBCDIC-US"?><a/>')
    with pytest.raises(XmlError, match="unsupported encoding"):
        parse_xml(b'<?xml version="1.0" encoding="UTF-16"?><a/>')
    with pytest.raises(XmlError, match="UTF-32"):
        parse_xml(b"\xff\xfe\x00\x00<\x00\x00\x00")


def test_accepts_utf16_with_bom_and_latin1() -> None:
    doc = '<?xml version="1.0" encoding="UTF-16"?><a>caf\u00e9</a>'
    assert parse_xml(doc.encode("utf-16")).text == "caf\u00e9"
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\u00e9</a>'.encode("latin-1")
    assert parse_xml(latin).text == "caf\u00e9"
    assert parse_xml(b"\xef\xbb\xbf<a>\xc3\xa9</a>").text == "\u00e9"


def test_refuses_doctype_hidden_in_utf16() -> None:
    doc = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    with pytest.raises(XmlError, match="DTDs"):
        parse_xml(doc.encode("utf-16"))


def test_refuses_str() -> None:
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]

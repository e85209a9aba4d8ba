"""The bounded xpathFilter subset and the credential checks, without HTTP."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from ccmp_server.auth import Authenticator, AuthError, Credentials, parse_basic_authorization
from ccmp_server.xpath import XPathFilterError, XPathLimits, compile_filter, matches
from focus.core.accounts import AccountDirectory
from focus.core.database import open_database
from focus.core.errors import CoreError, ErrorKind
from focus.xcon.model import Role

DOC = etree.fromstring(
    b"""<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
        entity="xcon:1@example.com"><conference-description>
        <display-text>Room</display-text><available-media>
        <entry label="1"><type>audio</type></entry><entry label="2"><type>video</type></entry>
        </available-media></conference-description>
        <conference-state><active>false</active></conference-state></conference-info>"""
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # RFC 6503 s5.3.1 and s5.3.2 examples, verbatim.
        (
            "/conference-info[conference-description/available-media/entry/type='audio' and "
            "conference-description/available-media/entry/type='video']",
            True,
        ),
        ("/conference-info[conference-state/active='false']", True),
        ("/conference-info[conference-state/active='true']", False),
        ("/info:conference-info[count(info:conference-description/available-media/entry)>1]", True),
        ("/conference-info[@entity='xcon:2@example.com']", False),
        ("/conference-info[contains(conference-description/display-text, 'Ro')]", True),
        ("/conference-info[not(conference-state/locked)]", True),
        ("/conference-info/conference-description/display-text", True),
        ("/conference-info['Room' = conference-description/display-text]", True),
        ("/conference-info[count(conference-description/available-media/entry) = count(x)]", False),
        ("/conference-info[string-length(conference-description/display-text) > 2]", True),
    ],
)
def test_supported_filters(expression: str, expected: bool) -> None:
    assert matches(compile_filter(expression), DOC) is expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("//entry", "descendant"),
        ("/conference-info/descendant::entry", "unsupported syntax"),
        ("document('http://example.com/x')", "function document"),
        ("/a[$x]", "unsupported syntax"),
        ("/a | /b", "unsupported syntax"),
        ("/a[b[c[d[e[f]]]]]", "nests predicates"),
        ("/" + "/".join(["a"] * 17), "location steps"),
        ("a" * 600, "longer than"),
        ("", "empty"),
        ("/a[", "not valid XPath"),
        ("/conference-info[users/user/endpoint = users/user/endpoint]", "two node-sets"),
        ("/conference-info[users/user/@entity != .]", "two node-sets"),
    ],
)
def test_hostile_or_unsupported_filters_are_refused(expression: str, reason: str) -> None:
    with pytest.raises(XPathFilterError, match=reason):
        compile_filter(expression, XPathLimits())


def test_basic_header_parsing() -> None:
    token = base64.b64encode(b"alice:pa:ss").decode()
    creds = parse_basic_authorization(f"Basic {token}")
    assert creds == Credentials("alice", "pa:ss", "basic")
    assert parse_basic_authorization(None) is None
    assert parse_basic_authorization("Bearer abc") is None
    with pytest.raises(AuthError):
        parse_basic_authorization("Basic !!!")
    with pytest.raises(AuthError):
        parse_basic_authorization("Basic " + base64.b64encode(b"nocolon").decode())


def test_authenticator_checks_and_caches_without_accepting_wrong_passwords(
    tmp_path: Path,
) -> None:
    conn = open_database(tmp_path / "db.sqlite3")
    accounts = AccountDirectory(conn, "example.com", scrypt_n=2**4)
    accounts.add("alice", Role.MODERATOR, "right")
    now = [0.0]
    auth = Authenticator(accounts, ttl_s=10, clock=lambda: now[0])
    assert auth.authenticate(Credentials("alice", "right", "subject")).role is Role.MODERATOR
    with pytest.raises(CoreError) as info:
        auth.authenticate(Credentials("alice", "wrong", "subject"))
    assert info.value.kind is ErrorKind.AUTHENTICATION_REQUIRED
    # A cached success still needs the same password; after expiry the directory decides.
    accounts.set_password("alice", "changed")
    assert auth.authenticate(Credentials("alice", "right", "basic")).name == "alice"
    now[0] = 11.0
    with pytest.raises(CoreError):
        auth.authenticate(Credentials("alice", "right", "basic"))
    conn.close()


_PIECES = st.sampled_from(
    [
        "/",
        "[",
        "]",
        "(",
        ")",
        "=",
        "!=",
        "<",
        ">",
        " and ",
        " or ",
        "'x'",
        "1",
        ".",
        "@",
        "entry",
        "conference-info",
        "info:type",
        "count",
        "not",
        "contains",
        ",",
        "//",
        "$v",
        "*",
        "|",
        "::",
        "document",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_any_filter_compiles_and_runs_or_is_refused_cleanly(expression: str) -> None:
    try:
        xpath = compile_filter(expression)
    except XPathFilterError:
        return
    with contextlib.suppress(XPathFilterError):
        matches(xpath, DOC)

"""Hostile input on the subscriber side: a clear error, never a crash or a hang."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focus.eventpkg.bodies import apply_rfc4575, rfc4575_view, xcon_full
from focus.eventpkg.xmlpatch import PatchError, apply_patch
from focus.xcon.model import ConferenceInfo, State
from focus.xcon.safexml import XmlError
from tests.focus.eventpkg.helpers import standard
from tests.focus.xcon import strategies as xs

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOC = xcon_full(standard())

selectors = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.sampled_from(
            [
                "ci:conference-info",
                "ci:users",
                "ci:user",
                "*",
                "[1]",
                "[0]",
                "[99999999999999999999]",
                "[@entity='x']",
                '[@entity="',
                "[ci:uri='a']",
                "[.='']",
                "@entity",
                "text()",
                "comment()",
                "namespace::ci",
                "x:y",
                "id('a')",
                "/",
                "//",
                "]",
                "'",
            ]
        ),
        max_size=8,
    ).map("".join),
)
operations = st.tuples(
    st.sampled_from(["add", "replace", "remove", "other"]),
    selectors,
    st.sampled_from(["", ' pos="before"', ' pos="after"', ' pos="prepend"', ' type="@a"']),
    st.sampled_from(["", "<x/>", "<x/><y/>", "text", '<ci:user entity="z"/>']),
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


@SETTINGS
@given(st.lists(operations, max_size=4))
def test_damaged_patches_fail_cleanly(ops: list[tuple[str, str, str, str]]) -> None:
    body = "".join(
        f'<{kind} sel="{_escape(sel)}"{attrs}>{content}</{kind}>'
        for kind, sel, attrs, content in ops
    )
    diff = (
        '<conference-info-diff xmlns="urn:ietf:params:xml:ns:xcon-conference-info" '
        'xmlns:ci="urn:ietf:params:xml:ns:conference-info" entity="x">'
        + body
        + "</conference-info-diff>"
    ).encode("utf-8", "surrogatepass")
    try:
        out = apply_patch(DOC, diff)
    except (PatchError, XmlError):
        return
    assert out.startswith(b"<?xml")


@SETTINGS
@given(st.binary(max_size=200))
def test_garbage_diffs_fail_cleanly(data: bytes) -> None:
    with contextlib.suppress(PatchError, XmlError):
        apply_patch(DOC, data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xs.conference_infos(0), xs.conference_infos(0), st.integers(0, 3))
def test_any_received_document_is_combined_or_refused(
    local: ConferenceInfo, received: ConferenceInfo, version: int
) -> None:
    doc = replace(received, version=version, state=State.PARTIAL)
    result = apply_rfc4575(rfc4575_view(local), 2, doc)
    assert result.version is not None

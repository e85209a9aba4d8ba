"""The media-timeout extension of msc-mixer/1.0 (mediactrl/README.md "Media timeout"): the
attribute on <join> and the <media-timeout> event round-trip through the schema-checked
codec, a bad value is a syntax error, and the executor tells only the owners that asked."""

from __future__ import annotations

import pytest

from mediactrl.mixer.codec import MEDIA_TIMEOUT_NAMESPACE, MixerDecodeError, decode, encode
from mediactrl.mixer.model import CreateConference, Event, Join, MediaTimeout
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService


def test_the_join_attribute_and_the_event_round_trip() -> None:
    join = Join("ab12:cd34", "conf1", media_timeout=60)
    body = encode(join)
    assert MEDIA_TIMEOUT_NAMESPACE.encode() in body
    assert decode(body) == join
    event = Event(MediaTimeout("ab12:cd34", 61))
    assert decode(encode(event)) == event
    assert decode(encode(Join("ab12:cd34", "conf1"))) == Join("ab12:cd34", "conf1", (), None)


@pytest.mark.parametrize("value", ["0", "-5", "soon", "", "1" * 12])
def test_a_bad_media_timeout_is_a_syntax_error(value: str) -> None:
    body = (
        '<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="1.0"'
        f' xmlns:mt="{MEDIA_TIMEOUT_NAMESPACE}">'
        f'<join id1="ab12:cd34" id2="conf1" mt:media-timeout="{value}"/></mscmixer>'
    ).encode()
    with pytest.raises(MixerDecodeError, match="media-timeout"):
        decode(body)


def test_an_unknown_foreign_event_still_decodes_as_empty() -> None:
    body = (
        b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="1.0">'
        b'<event><x:other xmlns:x="urn:example:other"/></event></mscmixer>'
    )
    assert decode(body) == Event(None)


def test_only_owners_that_asked_are_told_naming_the_connection_as_they_did() -> None:
    service = MixerService(ControlOnlyBackend(accept_any_connection=True))
    asked = (
        ("asker", CreateConference("c1")),
        ("quiet", CreateConference("c2")),
        # The application server names the leg its way round ("ours:theirs").
        ("asker", Join("as1:ms1", "c1", media_timeout=5)),
        ("quiet", Join("as1:ms1", "c2")),
    )
    for owner, request in asked:
        outcome = service.execute(owner, request)
        assert outcome.answer is not None and outcome.answer.status == 200
    # The media plane names it the media server's way.
    notices = service.media_timed_out("ms1:as1", 5.4)
    assert [(n.owner, n.event) for n in notices] == [("asker", Event(MediaTimeout("as1:ms1", 5)))]
    assert service.media_timed_out("zz9:yy8", 9.0) == ()

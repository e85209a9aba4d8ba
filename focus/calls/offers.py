"""SDP rules of a call already in the conference (pure): is a re-offer a hold (RFC 3264
s8.4), and our answer to it."""

from __future__ import annotations

import dataclasses

from focus.sip.sdp import SessionDescription

__all__ = ["answer_like", "is_hold"]


def is_hold(offer: SessionDescription) -> bool:
    """RFC 3264 s8.4: sendonly or inactive (or the RFC 2543 c=0.0.0.0) puts us on hold."""
    for index, media in enumerate(offer.media):
        if media.media != "audio" or media.rejected:
            continue
        conn = offer.connection_of(index)
        if conn is not None and conn.is_null:
            return True
        return not offer.direction_of(index).receives
    return False


def answer_like(
    previous: SessionDescription, offer: SessionDescription
) -> SessionDescription | None:
    """Our answer to a re-offer: the previous answer with each stream's direction the
    mirror of the offered one (RFC 3264 s6.1), the version bumped (s8). ``None`` when the
    streams do not line up with the previous session (a new stream needs a new leg)."""
    if len(offer.media) != len(previous.media):
        return None
    media = []
    for index, ours in enumerate(previous.media):
        if offer.media[index].media != ours.media:
            return None
        if offer.media[index].rejected:
            media.append(dataclasses.replace(ours, port=0))
        else:
            media.append(ours.with_direction(offer.direction_of(index).mirror()))
    return dataclasses.replace(previous, media=tuple(media)).bump_version()

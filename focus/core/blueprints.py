"""Blueprints as data files: conference-info documents in a directory.

The bundled ones (this package's ``blueprints/`` folder) are the five of
draft-ietf-xcon-examples s5.4 / RFC 6504 s5.4 (AudioRoom, VideoRoom, AudioConference1,
VideoConference1, AudioConference2) and a text ChatRoom.  An operator may add directories;
a file there with the name of a bundled one replaces it.  A blueprint's name is its file
stem; its XCON-URI is ``xcon:<name>@<domain>`` whatever the file's entity says; its
<free-text> is the purpose shown in blueprintsInfo (RFC 6503 s5.3.1).

Blueprint files are static (RFC 5239 s7.1): loaded at start, never persisted or changed
over CCMP.  Administrators may also create blueprints over CCMP (RFC 6503 s5.3.3); those
are ``editable`` objects persisted by the store like conferences (see focus.core.core).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path

from focus.core.state import ConferenceObject, Lifecycle, ObjectKind
from focus.xcon.codec import parse_conference_info
from focus.xcon.safexml import parse_xml

BUNDLED_DIR = Path(__file__).parent / "blueprints"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,63}")
_MAX_FILE_BYTES = 256 * 1024


class BlueprintError(ValueError):
    """A blueprint file cannot be used (names the file and the fault: the operator's)."""


def blueprint_uri(name: str, domain: str) -> str:
    """The XCON-URI of blueprint ``name``."""
    return f"xcon:{name}@{domain}"


def load_blueprint(path: Path, domain: str) -> ConferenceObject:
    """Read one blueprint file."""
    name = path.stem
    if not _NAME.fullmatch(name):
        raise BlueprintError(f"{path}: {name!r} is not a usable blueprint name")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BlueprintError(f"{path}: {exc.strerror}") from exc
    if len(data) > _MAX_FILE_BYTES:
        raise BlueprintError(f"{path}: larger than {_MAX_FILE_BYTES} bytes")
    try:
        info = parse_conference_info(parse_xml(data))
    except ValueError as exc:
        raise BlueprintError(f"{path}: {exc}") from exc
    uri = blueprint_uri(name, domain)
    desc = info.conference_description
    if (
        desc is not None
        and desc.conf_uris is not None
        and any(e.conference_passwords for e in desc.conf_uris.entries)
    ):
        # RFC 6503 s5.3.1: blueprints SHOULD NOT carry sensitive information.
        raise BlueprintError(f"{path}: a blueprint must not carry a conference-password")
    if info.users is not None and info.users.users:
        raise BlueprintError(f"{path}: a blueprint must not list users")
    obj = ConferenceObject(
        uri=uri,
        kind=ObjectKind.BLUEPRINT,
        version=1,
        info=dataclasses.replace(info, state=None),
        lifecycle=Lifecycle.RESERVED,
        name=name,
    )
    return obj.with_info(obj.info)


def load_blueprints(domain: str, extra_dirs: Iterable[Path] = ()) -> list[ConferenceObject]:
    """The bundled blueprints, overridden/extended by ``extra_dirs`` (in order)."""
    found: dict[str, ConferenceObject] = {}
    for directory in (BUNDLED_DIR, *extra_dirs):
        if not directory.is_dir():
            raise BlueprintError(f"{directory}: not a directory")
        for path in sorted(directory.glob("*.xml")):
            obj = load_blueprint(path, domain)
            found[obj.uri] = obj
    return sorted(found.values(), key=lambda o: o.name or o.uri)

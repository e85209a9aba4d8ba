"""The conference package's subscription durations as SIP profile settings."""

from __future__ import annotations

import pytest

from focus.settings import PROFILE_DIR, SettingsError, SipProfile


def test_the_default_profile_documents_the_rfc_values() -> None:
    profile = SipProfile.load("default")
    assert (profile.min_expires, profile.default_expires, profile.max_expires) == (60, 3600, 86400)
    text = (PROFILE_DIR / "default.toml").read_text()
    assert "min_expires = 60" in text and "max_expires = 86400" in text


def test_a_profile_may_shorten_them() -> None:
    profile = SipProfile.from_toml("quick", "min_expires = 2\ndefault_expires = 3\n")
    assert (profile.min_expires, profile.default_expires, profile.max_expires) == (2, 3, 86400)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_expires = 0\n", "0 < min_expires"),
        ("min_expires = 120\ndefault_expires = 60\n", "min_expires <= default_expires"),
        ("max_expires = 10\n", "default_expires <= max_expires"),
        ("min_expires = 1.5\n", "whole number"),
        ("min_expires = true\n", "whole number"),
        ('default_expires = "60"\n', "whole number"),
    ],
)
def test_bad_durations_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        SipProfile.from_toml("bad", text)

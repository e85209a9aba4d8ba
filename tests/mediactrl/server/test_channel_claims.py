"""Who may open a channel under a cfw-id (RFC 6230 s12.3, RFC 6505 s7): the control server's
claims, as the SIP side drives them (no sockets: the SIP and TCP halves are in
tests/security/test_cfw_isolation.py)."""

from __future__ import annotations

import pytest

from mediactrl.mixer import model as m
from mediactrl.server.control import ChannelRefused, ControlServer, ControlServerConfig
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService

FOCUS = "sip:focus@127.0.0.1:5060 from 127.0.0.1"
MALLORY = "sip:mallory@127.0.0.1:5062 from 127.0.0.1"


def control(**config: object) -> ControlServer:
    return ControlServer(
        MixerService(ControlOnlyBackend()),
        ControlServerConfig(**config),  # type: ignore[arg-type]
    )


def test_a_new_dialog_before_the_old_ones_bye_keeps_the_channel() -> None:
    """The opener BYEs the old dialog and INVITEs again; whichever arrives first, the new
    dialog holds the channel afterwards."""
    server = control()
    server.expect_channel("chan00000001", FOCUS, ["127.0.0.1"])
    server.expect_channel("chan00000001", FOCUS, ["127.0.0.1"])  # the new INVITE came first
    server.forget_channel("chan00000001")  # then the old dialog's BYE
    assert server.expects("chan00000001")
    assert server.sync_verdict("chan00000001", "127.0.0.1") == 200
    server.forget_channel("chan00000001")
    assert not server.expects("chan00000001")
    assert server.sync_verdict("chan00000001", "127.0.0.1") == 481


def test_the_claim_outlives_the_dialog_while_the_channel_owns_mixers() -> None:
    server = control()
    server.expect_channel("chan00000002", FOCUS, ["127.0.0.1"])
    assert server.service.execute("chan00000002", m.CreateConference("mine")).cfw_status == 200
    with pytest.raises(ChannelRefused) as live:
        server.expect_channel("chan00000002", MALLORY, ["127.0.0.1"])
    assert live.value.status == 403
    server.forget_channel("chan00000002")
    with pytest.raises(ChannelRefused):
        server.expect_channel("chan00000002", MALLORY)
    server.expect_channel("chan00000002", FOCUS, ["127.0.0.1"])  # the owner takes it back
    assert server.sync_verdict("chan00000002", "127.0.0.1") == 200
    assert server.sync_verdict("chan00000002", "127.0.0.2") == 403  # from elsewhere
    server.forget_channel("chan00000002")
    # Its last mixer goes after its last dialog: nothing left to protect, the cfw-id is free.
    server.service.execute("chan00000002", m.DestroyConference("mine"))
    server.expect_channel("chan00000002", MALLORY)
    assert server.sync_verdict("chan00000002", "10.0.0.9") == 200  # no hosts given: anywhere


def test_test_mode_accepts_any_dialog_id() -> None:
    assert control(accept_any_dialog=True).sync_verdict("whatever0001", None) == 200
    assert control().sync_verdict("whatever0001", None) == 481

"""The IvrService (sans-IO): RFC 6231 statuses, routing of digits, ends of dialogs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mediactrl.ivr import decode, encode
from mediactrl.ivr.model import (
    Dialog,
    DialogExit,
    DialogStart,
    DialogTerminate,
    DtmfMatchMode,
    DtmfNotify,
    DtmfSub,
    Event,
    Response,
    Subscribe,
    UnsupportedRequest,
)
from mediactrl.server.ivr_service import IvrNotice, IvrService, xsd_datetime

LEGS = {"ms:as"}  # the media server's orientation of one connection (RFC 6230 A.1)
WHEN = datetime(2026, 5, 12, 12, 13, 14, 250000, tzinfo=UTC)


@pytest.fixture
def service() -> IvrService:
    return IvrService(lambda cid: cid in LEGS or ":".join(reversed(cid.split(":"))) in LEGS)


def watch(dialogid: str | None = "d1", connectionid: str = "as:ms", **kw: object) -> DialogStart:
    fields: dict[str, object] = {
        "connectionid": connectionid,
        "dialogid": dialogid,
        "dialog": Dialog(),
        "subscribe": Subscribe(DtmfSub()),
    }
    fields.update(kw)
    return DialogStart(**fields)  # type: ignore[arg-type]


def test_digits_go_to_the_starting_channel_in_either_orientation(service: IvrService) -> None:
    outcome = service.execute("as1", "ch1", watch())
    assert outcome.response == Response(200, "d1", connectionid="as:ms")
    assert outcome.notices == ()
    stamp = "2026-05-12T12:13:14.250Z"
    expected = (IvrNotice("ch1", Event("d1", DtmfNotify("5", stamp))),)
    assert service.dtmf("ms:as", "5", WHEN) == expected
    assert service.dtmf("as:ms", "5", WHEN) == expected
    assert service.dtmf("other:leg", "5", WHEN) == ()


def test_collect_and_control_subscriptions_get_nothing_without_operations(
    service: IvrService,
) -> None:
    service.execute("as1", "ch1", watch(subscribe=Subscribe(DtmfSub(DtmfMatchMode.CONTROL))))
    assert service.dtmf("ms:as", "1", WHEN) == ()


def test_terminate_answers_200_then_dialogexit_0(service: IvrService) -> None:
    service.execute("as1", "ch1", watch())
    outcome = service.execute("as1", "ch2", DialogTerminate("d1"))
    assert outcome.response.status == 200
    assert outcome.notices == (IvrNotice("ch1", Event("d1", DialogExit(0, "terminated"))),)
    assert service.dtmf("ms:as", "5", WHEN) == ()
    again = service.execute("as1", "ch1", DialogTerminate("d1"))
    assert again.response.status == 406


def test_connection_end_exits_with_status_2(service: IvrService) -> None:
    service.execute("as1", "ch1", watch())
    notices = service.connection_closed("ms:as")
    assert [(n.channel, n.event.notification) for n in notices] == [
        ("ch1", DialogExit(2, "connection terminated"))
    ]
    assert service.dialogs_of("as1") == ()


def test_channel_loss_ends_its_dialogs_only(service: IvrService) -> None:
    service.execute("as1", "ch1", watch("d1"))
    service.execute("as1", "ch2", watch("d2"))
    assert service.channel_lost("ch1") == 1
    assert service.dialogs_of("as1") == ("d2",)


def test_dialog_ids_are_per_owner_and_unique(service: IvrService) -> None:
    assert service.execute("as1", "ch1", watch("d1")).response.status == 200
    assert service.execute("as1", "ch1", watch("d1")).response.status == 405
    assert service.execute("as2", "ch9", watch("d1")).response.status == 200
    generated = service.execute("as1", "ch1", watch(None)).response
    assert generated.status == 200 and generated.dialogid not in ("", "d1")


def test_empty_dialog_without_subscription_completes_at_once(service: IvrService) -> None:
    outcome = service.execute("as1", "ch1", watch(subscribe=None))
    assert outcome.response.status == 200
    assert [n.event.notification for n in outcome.notices] == [DialogExit(1, "nothing to execute")]
    assert service.dialogs_of("as1") == ()


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (watch(connectionid="no:such"), 407),
        (watch(dialog=Dialog(("prompt", "collect"))), 429),
        (watch(dialog=Dialog(("record",))), 430),
        (watch(dialog=Dialog(("collect",))), 439),
        (watch(dialog=None, src="http://example.com/d.vxml"), 420),
        (watch(dialogid=None, dialog=None, prepareddialogid="p1"), 406),
        (watch(connectionid=None, conferenceid="conf1"), 439),  # type: ignore[arg-type]
        (watch(streams=1), 428),
        (UnsupportedRequest("audit"), 439),
        (Response(200, "d1"), 400),
    ],
)
def test_refusals(service: IvrService, request_: object, status: int) -> None:
    outcome = service.execute("as1", "ch1", request_)  # type: ignore[arg-type]
    assert outcome.response.status == status
    assert outcome.response.reason
    assert service.dialogs_of("as1") == ()


def test_bodies_in_and_out(service: IvrService) -> None:
    outcome = service.handle_body("as1", "ch1", encode(watch()))
    assert decode(outcome.body()) == Response(200, "d1", connectionid="as:ms")
    bad = service.handle_body("as1", "ch1", b"<mscivr")
    assert bad.response.status == 400 and bad.response.dialogid == ""


def test_timestamps_are_utc_xsd_datetimes() -> None:
    assert xsd_datetime(WHEN) == "2026-05-12T12:13:14.250Z"

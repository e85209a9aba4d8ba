"""Headers keeps an index by name for lookups; it must always agree with the ordered field list
(the model: a plain list of (name, value) scanned on every lookup)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.headers import Headers, canonical_name, parse_via
from focus.sip.message import Request, make_response
from focus.sip.parser import parse_message

NAMES = ["Via", "v", "VIA", "To", "t", "Route", "X-Custom", "x-custom", "Contact", "m"]
VALUES = st.sampled_from(["SIP/2.0/UDP a.example;branch=z9hG4bK1", "<sip:b@c>", "1, 2", "x"])

Op = tuple[str, str, str]
OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "first", "set", "remove", "pop", "topvia"]),
        st.sampled_from(NAMES),
        VALUES,
    ),
    max_size=25,
)


def model_apply(model: list[tuple[str, str]], op: Op) -> None:
    kind, name, value = op
    canon = canonical_name(name)
    same = [i for i, (n, _) in enumerate(model) if n.lower() == canon.lower()]
    if kind == "add":
        model.append((canon, value))
    elif kind == "first":
        model.insert(same[0] if same else len(model), (canon, value))
    elif kind == "set":
        if same:
            model[same[0]] = (canon, value)
            for i in reversed(same[1:]):
                del model[i]
        else:
            model.append((canon, value))
    elif kind == "remove":
        for i in reversed(same):
            del model[i]
    elif kind == "pop" and same:
        parts = [p.strip() for p in model[same[0]][1].split(",")]
        if len(parts) > 1:
            model[same[0]] = (model[same[0]][0], ", ".join(parts[1:]))  # spelling kept
        else:
            del model[same[0]]


@settings(max_examples=300, deadline=None)
@given(OPS, st.lists(st.sampled_from(NAMES), max_size=5))
def test_lookups_agree_with_the_field_list_after_any_mutations(
    ops: list[Op], peeks: list[str]
) -> None:
    headers = Headers()
    model: list[tuple[str, str]] = []
    for i, op in enumerate(ops):
        kind, name, value = op
        if kind == "topvia":
            if any(n == "Via" for n, _ in model):
                via = parse_via(f"SIP/2.0/UDP h.example:5060;branch=z9hG4bK{i}")[0]
                headers.replace_top_via(via)
                j = next(k for k, (n, _) in enumerate(model) if n == "Via")
                rest = [p.strip() for p in model[j][1].split(",")][1:]
                model[j] = ("Via", ", ".join([str(via), *rest]))
            continue
        if kind == "add":
            headers.add(name, value)
        elif kind == "first":
            headers.add(name, value, first=True)
        elif kind == "set":
            headers.set(name, value)
        elif kind == "remove":
            headers.remove(name)
        else:
            headers.pop_first(name)
        model_apply(model, op)
        for peek in peeks[: i % 3]:  # interleave lookups, which build the index
            headers.get_all(peek)
    assert headers.items() == model
    for name in NAMES:
        want = [v for n, v in model if n.lower() == canonical_name(name).lower()]
        assert headers.get_all(name) == want
        assert headers.get(name) == (want[0] if want else None)
        assert (name in headers) == bool(want)


def test_typed_values_follow_appends_and_top_via_rewrites() -> None:
    request = parse_message(
        b"OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\r\n"
        b"From: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c1\r\n"
        b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(request, Request)
    h = request.headers
    assert [v.host for v in h.via] == ["10.0.0.1"]
    h.add("Via", "SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKb")
    assert [v.host for v in h.via] == ["10.0.0.1", "10.0.0.2"]
    h.replace_top_via(parse_via("SIP/2.0/UDP 10.0.0.3:5070;branch=z9hG4bKa")[0])
    assert [v.host for v in h.via] == ["10.0.0.3", "10.0.0.2"]
    assert (h.get("Via") or "").startswith("SIP/2.0/UDP 10.0.0.3:5070")
    # a response shares the request's parsed values but not its To (it gets our tag)
    response = make_response(request, 200, to_tag="ours")
    assert response.via == h.via and response.cseq == h.cseq and response.from_ == h.from_
    assert response.to.tag == "ours" and h.to.tag is None
    again = parse_message(response.to_bytes())
    assert again.via == response.via and again.to == response.to


def test_a_response_shares_only_what_it_copied() -> None:
    request = parse_message(
        b"INVITE sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\r\n"
        b"Record-Route: <sip:p1.example;lr>\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\n"
        b"To: <sip:b@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@x>\r\n"
        b"Max-Forwards: 70\r\nTimestamp: 54\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(request, Request) and len(request.headers.record_route) == 1
    for status, routes, stamp in ((100, 0, "54"), (180, 1, None), (200, 1, None), (486, 0, None)):
        response = make_response(request, status, to_tag="t")
        assert len(response.record_route) == routes, status
        assert response.headers.get("Timestamp") == stamp
        assert response.contact == [], "Contact is never copied"
        assert (response.to.tag is None) == (status == 100)
        assert parse_message(response.to_bytes()) == response

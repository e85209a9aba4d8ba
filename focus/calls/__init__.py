"""The focus's transaction user (RFC 4579): SIP calls <-> conference core commands.

:class:`focus.calls.focus.ConferenceFocus` routes the user agent's events and the core's
changes to one module per flow (dial_in, dial_out, transfer, hold, keypad, leaving,
recovery, events, chat); a participant's life is the transition table of
:mod:`focus.calls.participant`. See README.md for which modules are pure.

The media plane (3PCC legs, the CFW channel over SIP, the mixer driver) is :mod:`mediactrl`
(:mod:`mediactrl.legs`, :mod:`mediactrl.sip_opener`, :mod:`mediactrl.driver`).
"""

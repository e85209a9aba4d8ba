"""The focus's transaction user (RFC 4579): SIP calls <-> conference core commands.

* :mod:`focus.calls.admission` -- who may join a conference, and with which SIP status a
  caller is refused (pure).
* :mod:`focus.calls.focus` -- :class:`~focus.calls.focus.ConferenceFocus`: the factory and
  conference URIs, joins, hold, BYE/CANCEL, and core changes driving calls.

The media plane (3PCC legs, the CFW channel over SIP, the mixer driver) is :mod:`mediactrl`
(:mod:`mediactrl.legs`, :mod:`mediactrl.sip_opener`, :mod:`mediactrl.driver`).
"""

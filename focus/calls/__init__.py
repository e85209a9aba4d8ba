"""The focus's transaction user (RFC 4579): SIP calls <-> conference core commands.

* :mod:`focus.calls.admission` -- who may join a conference, and with which SIP status a
  caller is refused (pure).
* :mod:`focus.calls.media` -- the media plane as the focus sees it: 3PCC media legs to the
  media server (RFC 6230 A.1 connection ids) and the CFW channel opened over SIP.
* :mod:`focus.calls.focus` -- :class:`~focus.calls.focus.ConferenceFocus`: the factory and
  conference URIs, joins, hold, BYE/CANCEL, and core changes driving calls.
"""

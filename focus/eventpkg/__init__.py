"""The conference event package (RFC 4575, RFC 6502): NOTIFY bodies and planning, sans-IO.

* :mod:`focus.eventpkg.policy` - what a subscriber may see (``view_for``);
* :mod:`focus.eventpkg.bodies` - RFC 4575 full/partial documents and the s4.6
  procedure, full XCON documents;
* :mod:`focus.eventpkg.xmlpatch` - RFC 6502 diffs (RFC 5261 patches) and a patch applier;
* :mod:`focus.eventpkg.planner` - :class:`NotifyPlanner`: per-subscriber formats, pacing,
  versions, termination.

Nothing here does I/O or reads a clock: the SIP focus feeds snapshots, responses
and ``now``, and sends the :class:`SendNotify` events it gets back.
"""

from focus.eventpkg.bodies import (
    CONFERENCE_INFO,
    XCON_CONFERENCE_INFO,
    XCON_CONFERENCE_INFO_DIFF,
    Applied,
    Outcome,
    apply_rfc4575,
    participation_uri,
    rfc4575_full,
    rfc4575_partial,
    rfc4575_partial_info,
    rfc4575_view,
    xcon_full,
    xcon_view,
)
from focus.eventpkg.planner import (
    Mode,
    NotAcceptable,
    NotifyPlanner,
    PlannerConfig,
    SendNotify,
    SubscriptionState,
    TerminationReason,
    UnknownSubscriber,
    choose_mode,
)
from focus.eventpkg.policy import PRIVILEGED_ROLES, may_subscribe, view_for
from focus.eventpkg.xmlpatch import PatchError, apply_patch, diff_documents, xcon_diff

__all__ = [
    "CONFERENCE_INFO",
    "PRIVILEGED_ROLES",
    "XCON_CONFERENCE_INFO",
    "XCON_CONFERENCE_INFO_DIFF",
    "Applied",
    "Mode",
    "NotAcceptable",
    "NotifyPlanner",
    "Outcome",
    "PatchError",
    "PlannerConfig",
    "SendNotify",
    "SubscriptionState",
    "TerminationReason",
    "UnknownSubscriber",
    "apply_patch",
    "apply_rfc4575",
    "choose_mode",
    "diff_documents",
    "may_subscribe",
    "participation_uri",
    "rfc4575_full",
    "rfc4575_partial",
    "rfc4575_partial_info",
    "rfc4575_view",
    "view_for",
    "xcon_diff",
    "xcon_full",
    "xcon_view",
]

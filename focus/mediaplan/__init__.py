"""The media plan of a conference tree (RFC 5239 s9.4, RFC 6504 s7, RFC 6505 joins).

* :mod:`focus.mediaplan.plan` - PURE: conference documents and the focus's connections in,
  a :class:`MediaPlan` (mixers and joins) out; the rules are in README.md;
* :mod:`focus.mediaplan.reconcile` - the asyncio adapter: ``MediaReconciler`` applies plans
  through a MediaDriver (import it from there, so this package stays free of asyncio).
"""

from focus.mediaplan.plan import (
    PARENT_AUDIO,
    PARENT_GAIN,
    SM_NS,
    Connections,
    Link,
    Lookup,
    MediaPlan,
    PlannedJoin,
    has_audio,
    link_of,
    plan_media,
    plan_tree,
    root_uri,
    sidebar_documents,
)

__all__ = [
    "PARENT_AUDIO",
    "PARENT_GAIN",
    "SM_NS",
    "Connections",
    "Link",
    "Lookup",
    "MediaPlan",
    "PlannedJoin",
    "has_audio",
    "link_of",
    "plan_media",
    "plan_tree",
    "root_uri",
    "sidebar_documents",
]

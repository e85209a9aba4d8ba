"""The sans-IO modules stay sans-IO: importing one never loads asyncio, socket or ssl.

Each module is imported in a fresh interpreter (nothing imported before it can hide what it
pulls in). On failure the message names the import chain that loaded the forbidden module.
Append your pure module to :data:`PURE_MODULES`; asyncio adapters (``focus.sip.aio.*``) and
modules doing blocking file or SQLite I/O (``focus.core.store``...) do not belong here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.paths import ROOT

PURE_MODULES = (
    "focus.sip.dialog",
    "focus.sip.digest",
    "focus.sip.lockout",
    "focus.sip.errors",
    "focus.sip.events",
    "focus.sip.flow",
    "focus.sip.headers",
    "focus.sip.message",
    "focus.sip.oc",
    "focus.sip.offer_answer",
    "focus.sip.overload",
    "focus.sip.parser",
    "focus.sip.refer",
    "focus.sip.sdp",
    "focus.sip.session_timer",
    "focus.sip.subscription",
    "focus.sip.timers",
    "focus.sip.transaction",
    "focus.sip.uacore",
    "focus.sip.uri",
    "focus.sip.uri_patterns",
    "focus.xcon.codec",
    "focus.xcon.merge",
    "focus.xcon.model",
    "focus.xcon.safexml",
    "focus.core.autogen",
    "focus.core.changes",
    "focus.core.commands",
    "focus.core.core",
    "focus.core.errors",
    "focus.core.policy",
    "focus.core.schedule",
    "focus.core.serial",
    "focus.core.state",
    "focus.eventpkg.bodies",
    "focus.eventpkg.core_bridge",
    "focus.eventpkg.limits",
    "focus.eventpkg.planner",
    "focus.eventpkg.policy",
    "focus.eventpkg.xmlpatch",
    "focus.mediaplan",
    "focus.mediaplan.plan",
    "focus.authority",
    "focus.calls.admission",
    "focus.calls.gatekeeper",
    "focus.calls.digits",
    "focus.calls.offers",
    "focus.calls.participant",
    "focus.calls.registry",
    "focus.calls.roster",
    "focus.settings",
    "mediactrl.plan",
    "mediactrl.cfw.sdp",
    "mediactrl.cfw.connection",
    "mediactrl.cfw.parser",
    "mediactrl.cfw.message",
    "mediactrl.cfw.errors",
    "mediactrl.cfw.events",
    "mediactrl.mixer.model",
    "mediactrl.mixer.codec",
    "mediactrl.ivr.model",
    "mediactrl.ivr.codec",
    "mediactrl.media.clock",
    "mediactrl.media.dtmf",
    "mediactrl.media.errors",
    "mediactrl.media.events",
    "mediactrl.media.g711",
    "mediactrl.media.jitter",
    "mediactrl.media.mixer",
    "mediactrl.media.rtcp",
    "mediactrl.media.rtp",
    "mediactrl.media.talkers",
    "mediactrl.server.mixer_service",
    "mediactrl.server.ivr_service",
)

FORBIDDEN = ("asyncio", "socket", "ssl")

# Run in the child: a meta path finder that only watches (it finds nothing itself) notes which
# of our files were importing when a forbidden module was first asked for.
_PROBE = """
import importlib, json, sys, traceback
FORBIDDEN = {forbidden!r}
chains = {{}}
class Watch:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in FORBIDDEN and name not in chains:
            chains[name] = [f"{{f.filename}}:{{f.lineno}}" for f in traceback.extract_stack()
                            if {root!r} in f.filename]
        return None
sys.meta_path.insert(0, Watch)
importlib.import_module({module!r})
print(json.dumps({{n: chains.get(n, []) for n in FORBIDDEN if n in sys.modules}}))
"""


def test_the_list_has_no_duplicates() -> None:
    assert len(set(PURE_MODULES)) == len(PURE_MODULES)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_importing_loads_no_event_loop_socket_or_ssl(module: str) -> None:
    probe = _PROBE.format(forbidden=FORBIDDEN, root=str(ROOT), module=module)
    # cwd first on sys.path (``-c``): the worktree's packages, as in the parent.
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # the return code is asserted with the child's stderr
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    assert not loaded, f"importing {module} loads " + "; ".join(
        f"{name} via {' -> '.join(chain) or 'a module outside the repository'}"
        for name, chain in loaded.items()
    )

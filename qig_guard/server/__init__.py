"""``qig-guard server``: a Language Server Protocol server over stdio.

:mod:`qig_guard.server.documents` checks editor buffers with the engine (no
protocol types); :mod:`qig_guard.server.app` speaks the protocol with pygls,
the optional extra ``qig-guard[server]``. Neither imports torch.
"""

DEBOUNCE_MS = 100
"""How long an edited buffer must be quiet before it is checked again."""

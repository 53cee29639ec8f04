"""Rung 3's tunnel: an SSH local forward to a read-only replica, kept by a process of its own.

``opener`` (what rung 3 and ``ladder tunnel open`` call: open, lease, check read-only, hand out
a DSN), ``process`` (the keeper started detached, leased by PID + start time, the ``ssh_tunnel``
undo kind), ``keeper`` (the process itself: forward, reconnect, stop at its lease's end) and
``readonly`` (is the server a standby, or can the role only read?).
"""

from ladder.tunnel.opener import OpenedTunnel, open_read_only_tunnel, tunnel_target
from ladder.tunnel.process import Keeper, read_status
from ladder.tunnel.readonly import READ_ONLY_OPTION, check_read_only, read_only_dsn

__all__ = [
    "READ_ONLY_OPTION", "Keeper", "OpenedTunnel", "check_read_only", "open_read_only_tunnel",
    "read_only_dsn", "read_status", "tunnel_target",
]  # fmt: skip

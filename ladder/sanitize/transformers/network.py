"""``ip``: addresses in the documentation networks, which are never routed.

IPv4 goes to 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24 (RFC 5737), IPv6 to 2001:db8::/32
(RFC 3849). A network mask in the input (``10.0.0.0/8``) is dropped: the output is one host.
With ``unique: true`` every address (IPv4 too) becomes a 96-bit host in 2001:db8::/32, because
the three IPv4 test networks hold only 762 hosts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ladder.sanitize import pools
from ladder.sanitize.registry import register
from ladder.sanitize.transformers._pseudonym import Pseudonymizer
from ladder.sanitize.transformers._vector import join, pick

_V4_NETS = pa.array(["192.0.2.", "198.51.100.", "203.0.113."])
_MASK16 = np.uint64(0xFFFF)


def _groups(h: np.ndarray, count: int) -> list[pa.Array]:
    """``count`` IPv6 groups from the low bits of ``h``, most significant first."""
    hexes = pools.hex16()
    return [
        hexes.take(pa.array(((h >> np.uint64(16 * i)) & _MASK16).astype(np.int64)))
        for i in range(count - 1, -1, -1)
    ]


def _colon_join(parts: list[pa.Array]) -> pa.Array:
    return pc.binary_join_element_wise(*parts, ":")


@register
class Ip(Pseudonymizer):
    """A deterministic address in the test networks, IPv4 for IPv4 and IPv6 for IPv6."""

    name = "ip"
    categories = frozenset({"S", "I"})

    def render(self, h: np.ndarray, h2: np.ndarray | None, text: pa.Array) -> pa.Array:
        if h2 is not None:
            return join("2001:db8:", _colon_join(_groups(h2, 2) + _groups(h, 4)))
        net = pick(_V4_NETS, h)
        host = pools.decimals256().take(
            pa.array(((h >> np.uint64(8)) % np.uint64(254) + np.uint64(1)).astype(np.int64))
        )
        v4 = join(net, host)
        v6 = join("2001:db8::", _colon_join(_groups(h, 4)))
        is_v6 = pc.fill_null(pc.match_substring(text, ":"), False)
        return pc.if_else(is_v6, v6, v4)

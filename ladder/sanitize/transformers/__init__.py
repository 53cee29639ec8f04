"""Every transformer family; importing this package registers them all.

Use :func:`ladder.sanitize.registry.get_transformer` to get one by name.
"""

from ladder.sanitize.registry import TransformerOptions, get_transformer, names
from ladder.sanitize.transformers import basic, network, people, scrubbed

__all__ = [
    "TransformerOptions",
    "basic",
    "get_transformer",
    "names",
    "network",
    "people",
    "scrubbed",
]

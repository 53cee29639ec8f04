"""One module per outside system, each a :class:`~ladder.connectors.base.Connection`.

``base`` (the shape: lazy open, idempotent close, ``with``, vendor errors translated into
:mod:`ladder.errors`), ``postgres`` (connections, client programs, database helpers),
``pg_catalog`` (tables and columns), ``logfiles`` (Rails and lograge logs, scrubbed at parse time).
"""

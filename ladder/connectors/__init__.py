"""One module per outside system, each a :class:`~ladder.connectors.base.Connection`.

``base`` (the shape: lazy open, idempotent close, ``with``, vendor errors translated into
:mod:`ladder.errors`), ``postgres`` (connections, client programs, database helpers),
``pg_catalog`` (tables and columns), ``logfiles`` (Rails and lograge logs, scrubbed at parse time),
``ssh`` (fabric, pinned host keys), ``hosts`` (argv in, results out: over SSH or on this machine),
``puma`` (finding the server and its workers), ``rbtrace`` (preflight, eval, a tracer that always
detaches) and ``rbtrace_leases`` (undoing a tracer or a probe, for the run and the janitor).
"""

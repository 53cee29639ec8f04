"""Rung 5's parts: the blast-radius guard (:mod:`ladder.flags.guard`) and the collection of the
actor's log lines while the flag is on (:mod:`ladder.flags.collect`). The gate itself is written
by :mod:`ladder.connectors.flipper` under a ``flipper_actor_gate`` lease
(:mod:`ladder.connectors.flipper_leases`)."""

"""Rung 2's pipeline, in order: subset plan, copy, schema, gate, swap (see ``pipeline``)."""

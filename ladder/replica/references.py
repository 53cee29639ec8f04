"""Virtual references as config: the ``virtual_references`` entries of a policy or a runbook.

::

    virtual_references:
      - from: comments(commentable_id)
        to: posts(id)                      # or just `posts`: its primary key
        where: "commentable_type = 'Post'"

A light module (pydantic only), so the runbook loader and the CLI read it without loading the
subset planner; :mod:`ladder.replica.subset.virtual` puts them in the foreign-key graph.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ladder.errors import ConfigError

_NAME = r"[A-Za-z_][A-Za-z0-9_$]*"
_REF = re.compile(
    rf"^\s*(?P<table>(?:{_NAME}\.)?{_NAME})\s*(?:\((?P<cols>\s*{_NAME}(?:\s*,\s*{_NAME})*)\s*\))?\s*$"
)


def parse_ref(text: str) -> tuple[str, tuple[str, ...]]:
    """``"billing.invoices(id, year)"`` -> ``("billing.invoices", ("id", "year"))``; no
    parentheses: no columns (the table's key)."""
    m = _REF.match(text)
    if not m:
        raise ValueError(f"{text!r} is not 'table(column, ...)' or 'schema.table(column)'")
    cols = tuple(c.strip() for c in m["cols"].split(",")) if m["cols"] else ()
    return m["table"], cols


class VirtualReference(BaseModel):
    """``from`` rows reference ``to`` rows; only the ``from`` rows matching ``where`` do."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    source: str = Field(alias="from", description="referencing table(columns)")
    to: str = Field(description="referenced table(columns), or the table for its key")
    where: str | None = Field(None, description="condition on the referencing rows")

    @field_validator("source")
    @classmethod
    def _source_has_columns(cls, v: str) -> str:
        if not parse_ref(v)[1]:
            raise ValueError(f"{v!r}: name the referencing columns, e.g. comments(commentable_id)")
        return v

    @field_validator("to")
    @classmethod
    def _to_parses(cls, v: str) -> str:
        parse_ref(v)
        return v

    @field_validator("where")
    @classmethod
    def _where_is_one_condition(cls, v: str | None) -> str | None:
        if v is not None:
            # Imported here: the runbook loader reads this model without the subset machinery.
            from ladder.replica.subset.seeds import compile_condition

            try:
                params = compile_condition(v).params
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            if params:
                raise ValueError(f"{v!r}: a virtual reference takes no :parameters")
        return v

    def __str__(self) -> str:
        return f"{self.source} -> {self.to}" + (f" where {self.where}" if self.where else "")

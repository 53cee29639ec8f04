"""Virtual references: foreign keys the database does not declare, followed like real ones.

Rails apps hold references PostgreSQL knows nothing about: polymorphic associations
(``comments.commentable_type`` + ``commentable_id``), single-table inheritance (``type``), and
plain ``*_id`` columns without a constraint. A policy or runbook declares them (Greenmask calls
them ``virtual_references`` / ``polymorphic_exprs``)::

    virtual_references:
      - from: comments(commentable_id)
        to: posts(id)                      # or just `posts`: its primary key
        where: "commentable_type = 'Post'"

The subset planner follows them both ways, like a foreign key: the comments of a copied post are
children of it, the post of a copied comment is its parent. ``where`` is a condition on the
referencing rows (SQL from reviewed config, checked like a seed condition; no parameters). They
never order the load nor reach the validation gate: the database does not enforce them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ladder.errors import ConfigError
from ladder.replica.subset.graph import ForeignKey, Graph
from ladder.replica.subset.seeds import compile_condition

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
            try:
                params = compile_condition(v).params
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            if params:
                raise ValueError(f"{v!r}: a virtual reference takes no :parameters")
        return v

    def __str__(self) -> str:
        return f"{self.source} -> {self.to}" + (f" where {self.where}" if self.where else "")


def with_virtual(
    graph: Graph, refs: Sequence[VirtualReference], schemas: Sequence[str] = ("public",)
) -> Graph:
    """``graph`` with ``refs`` added as foreign keys; an unknown table or column, or a column
    count that differs from the referenced key, is a :class:`ConfigError` naming the reference."""
    if not refs:
        return graph
    added: list[ForeignKey] = []
    for ref in refs:
        child_name, child_cols = parse_ref(ref.source)
        parent_name, parent_cols = parse_ref(ref.to)
        child = graph.tables[graph.resolve(child_name, schemas)]
        parent = graph.tables[graph.resolve(parent_name, schemas)]
        parent_cols = parent_cols or parent.key
        if len(parent_cols) != len(child_cols):
            raise ConfigError(
                f"virtual reference {ref}: {len(child_cols)} referencing column(s) for "
                f"{len(parent_cols) or 'no'} referenced one(s)"
            )
        for table, names in ((child, child_cols), (parent, parent_cols)):
            have = {c.name for c in table.columns}
            unknown = [n for n in names if n not in have]
            if unknown:
                raise ConfigError(
                    f"virtual reference {ref}: {table.name} has no column {', '.join(unknown)}"
                )
        not_null = {c.name for c in child.columns if c.not_null}
        added.append(
            ForeignKey(
                f"virtual {ref.source} -> {ref.to}",
                child.name,
                child_cols,
                parent.name,
                tuple(parent_cols),
                nullable=not set(child_cols) <= not_null,
                where=ref.where,
                virtual=True,
            )
        )
    return Graph(graph.tables, (*graph.fks, *added))

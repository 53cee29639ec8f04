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

from collections.abc import Sequence

from ladder.errors import ConfigError
from ladder.replica.references import VirtualReference, parse_ref
from ladder.replica.subset.graph import ForeignKey, Graph

__all__ = ["VirtualReference", "parse_ref", "with_virtual"]


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

"""Virtual references (polymorphic associations, STI, keys without a constraint) in the policy,
the runbook and the subset plan; no database."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg import sql
from pydantic import ValidationError

from ladder.errors import ConfigError
from ladder.replica.subset import (
    Column,
    Graph,
    Table,
    VirtualReference,
    load_order,
    plan_subset,
    with_virtual,
)
from ladder.replica.subset.query import Binder, children_select, parents_select
from ladder.replica.subset.virtual import parse_ref
from ladder.rungs.local_replica import LocalReplicaSettings
from ladder.sanitize.policy import load_policy


def _table(name: str, columns: list[str], key: tuple[str, ...] = ("id",)) -> Table:
    schema, rel = name.split(".")
    cols = tuple(Column(c, "pg_catalog", "int8", "bigint", c in key, False) for c in columns)
    return Table(schema, rel, cols, key, 100.0)


def rails() -> Graph:
    return Graph(
        {
            t.name: t
            for t in [
                _table("public.posts", ["id", "type"]),
                _table("public.comments", ["id", "commentable_type", "commentable_id"]),
                _table("billing.invoices", ["id", "year"], key=("id", "year")),
            ]
        },
        (),
    )


def ref(source: str, to: str, where: str | None = None) -> VirtualReference:
    return VirtualReference.model_validate({"from": source, "to": to, "where": where})


POST = ref("comments(commentable_id)", "posts(id)", "commentable_type = 'Post'")


def test_parse_ref() -> None:
    assert parse_ref("comments(commentable_id)") == ("comments", ("commentable_id",))
    assert parse_ref(" billing.invoices ( id , year ) ") == ("billing.invoices", ("id", "year"))
    assert parse_ref("posts") == ("posts", ())
    for bad in ("posts(", "posts()", "a.b.c(id)", "posts(id); DROP TABLE x"):
        with pytest.raises(ValueError):
            parse_ref(bad)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"from": "comments", "to": "posts"}, "name the referencing columns"),
        ({"from": "comments(a)", "to": "posts(id"}, "is not 'table(column"),
        ({"from": "comments(a)", "to": "posts", "where": "x = 1; DROP TABLE posts"}, ";"),
        ({"from": "comments(a)", "to": "posts", "where": "x = :id"}, "no :parameters"),
        ({"from": "comments(a)", "to": "posts", "extra": 1}, "extra"),
    ],
)
def test_bad_references_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        VirtualReference.model_validate(data)
    assert message in str(err.value)


def test_with_virtual_resolves_names_and_defaults_to_the_key() -> None:
    graph = with_virtual(rails(), [POST])
    (fk,) = graph.children_of("public.posts")
    assert (fk.child, fk.child_columns, fk.parent_columns) == (
        "public.comments",
        ("commentable_id",),
        ("id",),
    )
    assert fk.virtual and fk.where == "commentable_type = 'Post'" and fk.nullable
    assert graph.parents_of("public.comments") == [fk]
    assert with_virtual(rails(), [ref("comments(id)", "posts")]).fks[0].parent_columns == ("id",)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (ref("comments(commentable_id)", "invoices"), "unknown table 'invoices'"),
        (ref("comments(commentable_id)", "billing.invoices"), "1 referencing column(s) for 2"),
        (ref("comments(nope)", "posts(id)"), "public.comments has no column nope"),
    ],
)
def test_with_virtual_names_what_is_wrong(bad: VirtualReference, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        with_virtual(rails(), [bad])
    assert message in str(err.value)


def test_the_plan_follows_a_virtual_reference_both_ways_but_it_never_orders_the_load() -> None:
    graph = with_virtual(rails(), [POST])
    down = plan_subset(graph, ["posts: id = 1"], depth=1)
    assert down.order == ["public.comments", "public.posts"]  # alphabetical: no load order
    assert "child-of public.posts via virtual comments(commentable_id) -> posts(id)" in str(down)
    up = plan_subset(graph, ["comments: id = 1"], depth=0)
    assert up.table("public.posts").reasons[0].kind == "parent"
    assert load_order(["public.comments", "public.posts"], graph.fks) == (
        ["public.comments", "public.posts"],
        [],
    )


def test_the_condition_applies_to_the_referencing_rows_both_ways() -> None:
    graph = with_virtual(rails(), [POST])
    (fk,) = graph.fks
    posts, comments = graph.tables["public.posts"], graph.tables["public.comments"]
    down = children_select(fk, comments, posts, [1, 2], Binder(literal=True), None)
    text = down.as_string(None)
    assert text.endswith("AND (commentable_type = 'Post')")
    up = parents_select(fk, posts, comments, sql.SQL("true"))
    assert "WHERE true AND (commentable_type = 'Post'))" in up.as_string(None)


def test_policy_and_runbook_declare_them(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "key: {env: K}\n"
        "virtual_references:\n"
        "  - {from: 'comments(commentable_id)', to: posts, where: \"commentable_type = 'Post'\"}\n"
        "tables: {}\n"
    )
    assert load_policy(path).virtual_references == [
        ref("comments(commentable_id)", "posts", POST.where)
    ]
    path.write_text(
        "key: {env: K}\nvirtual_references:\n  - {from: comments, to: posts}\ntables: {}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert "policy.yaml:3" in str(err.value) and "name the referencing columns" in str(err.value)
    settings = LocalReplicaSettings.model_validate(
        {"virtual_references": [{"from": "comments(commentable_id)", "to": "posts(id)"}]}
    )
    assert settings.virtual_references[0].to == "posts(id)"

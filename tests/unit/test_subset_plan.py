"""Seed parsing, condition checking and the static plan rules, on hand-built FK graphs (no database)."""

from __future__ import annotations

import pytest

from ladder.errors import ConfigError
from ladder.replica.subset import (
    Column,
    ForeignKey,
    Graph,
    Seed,
    Table,
    compile_condition,
    load_order,
    parse_seed,
    plan_subset,
)

# ---------------------------------------------------------------- seeds


def test_parse_seed_qualifies_the_table_and_keeps_the_condition() -> None:
    assert parse_seed("users: id = :user_id") == Seed("public.users", "id = :user_id")
    assert parse_seed("  app.orders :  created_at > now() - interval '1 day' ") == Seed(
        "app.orders", "created_at > now() - interval '1 day'"
    )
    assert parse_seed("users: id = ANY(:user_ids)", default_schema="shop").table == "shop.users"


@pytest.mark.parametrize(
    "text", ["users id = 1", "users:", ": id = 1", "1users: id = 1", "users:: id", "a.b.c: x"]
)
def test_unparseable_seed_says_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match=r"cannot parse seed .*expected 'TABLE: CONDITION'"):
        parse_seed(text)


@pytest.mark.parametrize(
    ("condition", "bad"),
    [("id = 1; DROP TABLE users", ";"), ("id = 1 -- x", "--"), ("id = 1 /* x */", "/*")],
)
def test_condition_that_is_not_one_expression_is_refused(condition: str, bad: str) -> None:
    with pytest.raises(ConfigError, match="must be a single SQL expression") as err:
        parse_seed(f"users: {condition}")
    assert repr(bad) in str(err.value)


def test_params_become_placeholders_and_casts_quotes_and_percent_stay_text() -> None:
    cond = compile_condition(
        "id = ANY(:ids::bigint[]) AND email LIKE '%:not_a_param%' AND x::text = $q$:nor$q$ "
        "AND e = E'it\\'s :no' AND \"col:umn\" = :ids AND y = :other"
    )
    assert cond.params == ("ids", "other")
    text = cond.query.as_string(None)
    assert "ANY(%(ids)s::bigint[])" in text
    assert "LIKE '%%:not_a_param%%'" in text  # % doubled: psycopg would read it as a placeholder
    assert "$q$:nor$q$" in text and "E'it\\'s :no'" in text and '"col:umn" = %(ids)s' in text


def test_orders_in_the_last_day_needs_no_params() -> None:
    assert parse_seed("orders: created_at > now() - interval '1 day'").params == ()


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("id = (1", "unbalanced parentheses"),
        ("id = 1) OR (true", "unbalanced parentheses"),
        ("name = 'x", "unterminated ' quote"),
        ('"name = 1', 'unterminated " quote'),
        ("name = $$x", "unterminated $$ string"),
    ],
)
def test_malformed_condition_is_refused(condition: str, message: str) -> None:
    with pytest.raises(ConfigError, match="seed condition") as err:
        compile_condition(condition)
    assert message in str(err.value)


def test_missing_params_are_named_without_their_values() -> None:
    cond = compile_condition("id = :user_id AND account_id = ANY(:account_ids)")
    with pytest.raises(ConfigError) as err:
        cond.bind({"user_id": 7, "token": "s3cret"}, what="seed public.users")
    assert "seed public.users needs parameter(s) account_ids" in str(err.value)
    assert "supplied: token, user_id" in str(err.value) and "s3cret" not in str(err.value)
    assert cond.bind({"user_id": 7, "account_ids": [1], "x": 2}, what="s") == {
        "user_id": 7,
        "account_ids": [1],
    }


# ---------------------------------------------------------------- graphs


def _table(name: str, columns: list[str], key: tuple[str, ...] = ("id",)) -> Table:
    schema, rel = name.split(".")
    cols = tuple(Column(c, "pg_catalog", "int8", "bigint", c in key, False) for c in columns)
    return Table(schema, rel, cols, key, 100.0)


def _fk(name: str, child: str, ccols: str, parent: str, pcols: str = "id", nullable=True):
    return ForeignKey(
        name, child, tuple(ccols.split(",")), parent, tuple(pcols.split(",")), nullable
    )


def shop() -> Graph:
    """users <-> accounts (cycle), users.referred_by_id (self), orders, order_items (composite)."""
    tables = [
        _table("public.accounts", ["id", "owner_user_id"]),
        _table("public.users", ["id", "account_id", "referred_by_id"]),
        _table("public.shops", ["id"]),
        _table("public.currencies", ["code"], key=("code",)),
        _table("public.orders", ["id", "shop_id", "user_id", "currency_code"]),
        _table(
            "public.order_items", ["order_id", "line_no", "shop_id"], key=("order_id", "line_no")
        ),
        _table("public.tags_users", ["user_id", "tag_id"], key=()),
        _table("public.tags", ["id"]),
        _table("audit.events", ["id", "user_id"]),
    ]
    fks = [
        _fk("accounts_owner", "public.accounts", "owner_user_id", "public.users"),
        _fk("users_account", "public.users", "account_id", "public.accounts"),
        _fk("users_referrer", "public.users", "referred_by_id", "public.users"),
        _fk("orders_shop", "public.orders", "shop_id", "public.shops", nullable=False),
        _fk("orders_user", "public.orders", "user_id", "public.users", nullable=False),
        _fk("orders_cur", "public.orders", "currency_code", "public.currencies", "code", False),
        _fk(
            "items_order",
            "public.order_items",
            "order_id,shop_id",
            "public.orders",
            "id,shop_id",
            nullable=False,
        ),
        _fk("tu_user", "public.tags_users", "user_id", "public.users", nullable=False),
        _fk("tu_tag", "public.tags_users", "tag_id", "public.tags", nullable=False),
        _fk("events_user", "audit.events", "user_id", "public.users"),
    ]
    return Graph({t.name: t for t in tables}, tuple(fks))


def _reasons(plan, table: str) -> list[str]:
    return [str(r) for r in plan.table(table).reasons]


def test_default_depth_follows_users_to_orders_to_items_and_parents_of_all() -> None:
    plan = plan_subset(shop(), ["users: id = ANY(:user_ids)"], whole_tables=["currencies"])
    assert plan.depth == 2
    assert set(plan.order) == {
        "public.accounts",
        "public.users",
        "public.shops",
        "public.currencies",
        "public.orders",
        "public.order_items",
        "public.tags_users",
        "public.tags",
        "audit.events",
    }
    assert "child-of public.orders via items_order (depth 2)" in _reasons(
        plan, "public.order_items"
    )
    assert _reasons(plan, "public.shops") == ["parent-of public.orders via orders_shop"]
    assert _reasons(plan, "public.currencies") == ["whole table"]
    assert "parent-of public.users via users_referrer" in _reasons(plan, "public.users")
    assert plan.params == ("user_ids",)


def test_depth_one_stops_before_order_items_and_depth_zero_takes_only_parents() -> None:
    one = plan_subset(shop(), ["users: id = 1"], depth=1)
    assert "public.orders" in one.order and "public.order_items" not in one.order
    zero = plan_subset(shop(), ["orders: id = 1"], depth=0)
    assert set(zero.order) == {
        "public.orders",
        "public.shops",
        "public.users",
        "public.accounts",
        "public.currencies",
    }


def test_load_order_puts_parents_first_and_reports_the_cycle() -> None:
    plan = plan_subset(shop(), ["users: id = 1"])
    order = plan.order
    for fk in shop().fks:
        if fk.child in order and fk.parent in order and not fk.self_reference:
            late = fk in plan.late_fks
            assert (order.index(fk.parent) < order.index(fk.child)) != late, fk
    assert [fk.name for fk in plan.late_fks] == ["accounts_owner"]


def test_cycles_break_at_a_nullable_fk_and_self_references_never_need_deferring() -> None:
    a = _fk("a_b", "public.a", "b_id", "public.b", nullable=False)
    b = _fk("b_a", "public.b", "a_id", "public.a", nullable=True)
    own = _fk("a_a", "public.a", "parent_id", "public.a", nullable=False)
    order, late = load_order(["public.a", "public.b"], [a, b, own])
    assert order == ["public.b", "public.a"] and late == [b]


def test_caps_of_zero_stop_children_but_never_parents() -> None:
    plan = plan_subset(shop(), ["orders: id = 1"], caps={"users": 0, "order_items": 5})
    assert all(r.kind == "parent" for r in plan.table("public.users").reasons)
    assert plan.table("public.order_items").cap == 5
    no_orders = plan_subset(shop(), ["users: id = 1"], caps={"orders": 0})
    assert "public.orders" not in no_orders.order and "public.order_items" not in no_orders.order


def test_all_tables_makes_every_table_of_the_schemas_whole() -> None:
    plan = plan_subset(shop(), [], all_tables=True)
    assert all(t.whole for t in plan.tables if t.name.startswith("public."))
    assert "audit.events" not in plan.order  # another schema, not referenced by public tables
    both = plan_subset(shop(), [], all_tables=True, schemas=["public", "audit"])
    assert len(both.tables) == 9 and all(t.whole for t in both.tables)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": ["nope: id = 1"]}, "unknown table 'nope' in schemas public"),
        ({"seeds": ["events: id = 1"]}, r"did you mean audit\.events"),
        ({"seeds": ["public.events: id = 1"]}, r"unknown table 'public.events'"),
        ({"seeds": ["tags_users: user_id = 1"]}, "has no primary key or NOT NULL unique index"),
        ({"seeds": ["users: id = 1"], "caps": {"tags_users": 3}}, "row cap for public.tags_users"),
        ({"seeds": ["users: id = 1"], "caps": {"orders": -1}}, "must be 0 or more"),
        ({"seeds": ["users: id = 1"], "whole_tables": ["ghost"]}, "unknown table 'ghost'"),
        ({"seeds": ["users: id = 1"], "depth": -1}, "child depth must be 0 or more"),
        ({"seeds": []}, "at least one seed"),
        ({"seeds": [Seed("public.users", "id = 1; DROP TABLE users")]}, "single SQL expression"),
    ],
)
def test_bad_plans_fail_with_a_clear_message(kwargs: dict, message: str) -> None:
    seeds = kwargs.pop("seeds")
    with pytest.raises(ConfigError, match=message):
        plan_subset(shop(), seeds, **kwargs)


def test_plan_prints_and_describes_before_execution() -> None:
    plan = plan_subset(shop(), ["users: id = :user_id"], caps={"orders": 10})
    rows = plan.describe()
    assert [r["table"] for r in rows] == plan.order
    assert rows[0].keys() == {"order", "table", "selected_by", "estimated_rows", "cap"}
    text = plan.render()
    assert text.startswith("subset plan: 9 tables, child depth 2")
    assert "seed (id = :user_id)" in text and "[cap 10]" in text
    assert "cycle: load accounts_owner" in text
    with_counts = plan.describe({"public.users": 3})
    assert next(r for r in with_counts if r["table"] == "public.users")["actual_rows"] == 3


def test_unqualified_seed_tables_are_looked_up_in_the_schemas_in_order() -> None:
    plan = plan_subset(shop(), ["events: id = 1"], schemas=["public", "audit"], depth=0)
    assert plan.seeds == (Seed("audit.events", "id = 1"),)


def test_one_value_for_an_array_parameter_binds_as_a_one_element_array() -> None:
    cond = compile_condition("id = ANY(:ids) AND kind = :kind AND x <> all ( :xs::bigint[] )")
    assert cond.arrays == {"ids", "xs"}
    bound = cond.bind({"ids": 877, "kind": "a", "xs": [1, 2]}, what="seed")
    assert bound == {"ids": [877], "kind": "a", "xs": [1, 2]}
    assert compile_condition("id = :ids OR f(:ids)").bind({"ids": 3}, what="s") == {"ids": 3}
    assert compile_condition("note = 'ANY(:x)'").arrays == frozenset()

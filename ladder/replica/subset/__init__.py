"""Subsets of a production database that follow foreign keys, planned and computed inside PostgreSQL.

    plan = build_plan(conn, ["users: id = ANY(:user_ids)"], whole_tables=["currencies"])
    print(plan.render())                      # tables in load order, why, estimated rows
    with execute_plan(conn, plan, {"user_ids": [1, 2]}) as subset:
        for table in subset.order:            # parents first
            query = sql.SQL("COPY ({}) TO STDOUT").format(subset.copy_query(table))
            ...                               # on this or another connection that ran
                                              # SET TRANSACTION SNAPSHOT subset.snapshot_id

``graph`` reads the FK graph from the catalog, ``seeds`` parses seed conditions, ``plan`` holds
the rules and the plan value, ``query`` renders SQL, ``execute`` computes the keys.
"""

from ladder.replica.subset.execute import Subset, execute_plan
from ladder.replica.subset.graph import Column, ForeignKey, Graph, Table, load_graph, load_order
from ladder.replica.subset.plan import (
    DEFAULT_DEPTH,
    Reason,
    SubsetPlan,
    TablePlan,
    build_plan,
    plan_subset,
)
from ladder.replica.subset.seeds import Condition, Seed, compile_condition, parse_seed
from ladder.replica.subset.virtual import VirtualReference, with_virtual

__all__ = [
    "DEFAULT_DEPTH",
    "Column",
    "Condition",
    "ForeignKey",
    "Graph",
    "Reason",
    "Seed",
    "Subset",
    "SubsetPlan",
    "Table",
    "TablePlan",
    "VirtualReference",
    "build_plan",
    "compile_condition",
    "execute_plan",
    "load_graph",
    "load_order",
    "parse_seed",
    "plan_subset",
    "with_virtual",
]

"""Load order and cycle breaking, on hand-built edges (no database)."""

from __future__ import annotations

from import_pipelines.engine.graph import Edge, load_order


def edge(table: str, ref: str, *, nullable: bool = True, key: bool = False, name: str | None = None) -> Edge:
    return Edge(table, (f"{ref}_id",), ref, ("id",), name or f"{table}_{ref}_fk", nullable, key)


def test_acyclic_tables_come_after_what_they_reference() -> None:
    order = load_order(["events_tags", "events", "tags", "projects"],
                       [edge("events_tags", "events"), edge("events_tags", "tags"), edge("events", "projects")])
    tables = list(order.tables)
    assert tables.index("projects") < tables.index("events") < tables.index("events_tags")
    assert tables.index("tags") < tables.index("events_tags")
    assert order.deferred == ()


def test_self_reference_is_deferred() -> None:
    regio = edge("projects", "projects", name="projects_regio_fk")
    order = load_order(["projects", "users"], [regio, edge("projects", "users")])
    assert order.tables == ("users", "projects")
    assert order.deferred == (regio,)
    assert order.is_deferred("projects", "projects_regio_fk")


def test_cycle_is_broken_at_the_nullable_edge() -> None:
    users_to_instructors = edge("users", "instructors", nullable=True)
    instructors_to_users = edge("instructors", "users", nullable=False)
    order = load_order(["users", "instructors"], [instructors_to_users, users_to_instructors])
    assert order.deferred == (users_to_instructors,)
    assert order.tables == ("users", "instructors")


def test_natural_key_edges_are_not_deferred_when_another_edge_can_be() -> None:
    in_key = edge("a", "b", nullable=True, key=True)
    not_null = edge("b", "a", nullable=False)
    order = load_order(["a", "b"], [in_key, not_null])
    assert order.deferred == (not_null,)
    assert order.tables == ("b", "a")  # a's key reference to b is loaded directly


def test_longer_and_nested_cycles_are_all_broken() -> None:
    edges = [edge("a", "b", nullable=False), edge("b", "c", nullable=False), edge("c", "a"),
             edge("c", "d", nullable=False), edge("d", "c"), edge("e", "a", nullable=False)]
    order = load_order(list("abcde"), edges)
    deferred = {(e.table, e.ref_table) for e in order.deferred}
    assert deferred == {("c", "a"), ("d", "c")}
    position = {table: index for index, table in enumerate(order.tables)}
    for e in edges:
        if e not in order.deferred:
            assert position[e.ref_table] < position[e.table], e

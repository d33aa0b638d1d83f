"""Load order from the target's foreign keys (plus optional extra references).

Tables form a graph whose edges point from a referencing table to the table it references; the
referenced table must be loaded first. Acyclic parts are ordered topologically. A self
reference (``projects.regio -> projects``) or a cycle (``users <-> instructors``) cannot be
ordered, so one edge of every cycle is *deferred*: its column is loaded without the reference
and the late-seed phase fills it in by natural key once every table is loaded.

Which edge of a cycle is deferred matters: an edge whose columns are all nullable can simply be
loaded as NULL, while a NOT NULL edge needs a placeholder row, and an edge that is part of the
table's natural key cannot be deferred at all (rows could not be matched without it). So the
breaker prefers nullable edges outside natural keys, and defers a NOT NULL edge only when every
edge of the cycle is NOT NULL.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from graphlib import TopologicalSorter

from import_pipelines.db.introspect import SchemaInfo


@dataclass(frozen=True)
class Reference:
    """A reference the catalogue does not declare (no FOREIGN KEY constraint), e.g. a soft link.

    ``table.columns`` holds values of ``ref_table.ref_columns``; the loaders translate it through
    natural keys exactly like a foreign key.
    """

    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    name: str = ""

    @property
    def label(self) -> str:
        """A stable name for messages: the given name or ``table(columns)->ref_table``."""
        return self.name or f"{self.table}({','.join(self.columns)})->{self.ref_table}"


@dataclass(frozen=True)
class Edge(Reference):
    """A foreign key or extra reference between loaded tables, and what deferring it would cost."""

    nullable: bool = True
    in_natural_key: bool = False


@dataclass(frozen=True)
class LoadOrder:
    """Tables in load order, and the edges deferred to the late-seed phase."""

    tables: tuple[str, ...]
    deferred: tuple[Edge, ...]

    def is_deferred(self, table: str, name: str) -> bool:
        """Whether the reference ``name`` of ``table`` is loaded late."""
        return any((edge.table, edge.name) == (table, name) for edge in self.deferred)


def dependency_edges(schema: SchemaInfo, *, tables: Iterable[str], extra_references: Iterable[Reference] = (),
                     natural_keys: dict[str, tuple[str, ...]] | None = None) -> list[Edge]:
    """Edges between ``tables`` from the schema's foreign keys plus ``extra_references``.

    References to tables outside ``tables`` impose no order (those rows are resolved against what
    the target already holds), so they are not edges here.
    """
    selected = set(tables)
    natural_keys = natural_keys or {}
    found = [(name, fk.columns, fk.ref_table, fk.ref_columns, fk.name) for name in sorted(selected)
             for fk in schema.table(name).foreign_keys if fk.ref_schema == schema.schema]
    found += [(ref.table, tuple(ref.columns), ref.ref_table, tuple(ref.ref_columns), ref.label)
              for ref in extra_references]
    return [Edge(table, columns, ref_table, ref_columns, name,
                 nullable=all(schema.table(table).column(column).nullable for column in columns),
                 in_natural_key=bool(set(columns) & set(natural_keys.get(table, ()))))
            for table, columns, ref_table, ref_columns, name in found if table in selected and ref_table in selected]


def load_order(tables: Iterable[str], edges: Iterable[Edge]) -> LoadOrder:
    """Order ``tables`` so referenced tables come first, deferring one edge of every cycle."""
    nodes = sorted(set(tables))
    all_edges = tuple(edges)
    deferred = [edge for edge in all_edges if edge.table == edge.ref_table]
    remaining = [edge for edge in all_edges if edge.table != edge.ref_table]

    while True:
        cyclic = [component for component in _strongly_connected(nodes, remaining) if len(component) > 1]
        if not cyclic:
            break
        for component in cyclic:
            inside = [edge for edge in remaining if edge.table in component and edge.ref_table in component]
            # the cheapest edge (see above), then by name so two runs choose the same edge
            victim = min(inside, key=lambda e: (e.in_natural_key, not e.nullable, e.table, e.name))
            remaining.remove(victim)
            deferred.append(victim)

    return LoadOrder(tables=_topological(nodes, remaining), deferred=tuple(deferred))


def _strongly_connected(nodes: list[str], edges: list[Edge]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so deep schemas cannot hit the recursion limit."""
    successors: dict[str, list[str]] = {node: [] for node in nodes}
    for edge in edges:
        successors[edge.table].append(edge.ref_table)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(successors[root]), 0)]  # node, its unvisited successors, its place on the stack
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children, height = work[-1]
            for child in children:
                if child not in index:
                    work.append((child, iter(successors[child]), len(stack)))
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:  # every successor visited: node is done
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    components.append(set(stack[height:]))
                    on_stack.difference_update(stack[height:])
                    del stack[height:]
    return components


def _topological(nodes: list[str], edges: list[Edge]) -> tuple[str, ...]:
    """Referenced tables first; among the tables ready at once, by name, so the order is stable between runs."""
    sorter = TopologicalSorter({node: set() for node in nodes})
    for edge in edges:
        sorter.add(edge.table, edge.ref_table)
    sorter.prepare()  # raises CycleError: cannot happen after cycle breaking, a guard against a logic error
    ready: list[str] = []
    order: list[str] = []
    while sorter.is_active():
        for node in sorter.get_ready():
            heapq.heappush(ready, node)
        order.append(heapq.heappop(ready))
        sorter.done(order[-1])
    return tuple(order)

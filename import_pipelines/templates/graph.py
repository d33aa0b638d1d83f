"""The reference graph of a template's entities.

An entity that references another loads after it. A cycle (or a self reference) cannot be
ordered, so the one cycle breaker (:func:`import_pipelines.engine.graph.load_order`) defers one
edge of it: that reference is *late*, resolved right away where the referenced row exists and
otherwise by ``late_seed``. A reference the template marks ``required`` counts as NOT NULL, so the
breaker prefers to defer an optional one.
"""

from __future__ import annotations

from graphlib import TopologicalSorter

from import_pipelines.engine.graph import Edge, LoadOrder, load_order
from import_pipelines.templates.model import Template


def template_load_order(template: Template) -> LoadOrder:
    """The entities' load order and the references deferred to break cycles."""
    edges = [Edge(table=name, columns=(column,), ref_table=ref.entity, ref_columns=(), name=column,
                  nullable=not ref.required)
             for name, entity in template.entities.items() for column, ref in entity.references.items()]
    return load_order(template.entities, edges)


def is_late(template: Template, entity: str, column: str) -> bool:
    """Whether ``entity.column`` is deferred to break a cycle or a self reference (so it is late-seeded)."""
    return template_load_order(template).is_deferred(entity, column)


def upstream_entities(template: Template, entity: str) -> list[str]:
    """Entities that must be loaded before ``entity`` (its non-late references)."""
    order = template_load_order(template)
    return sorted({ref.entity for column, ref in template.entities[entity].references.items()
                   if not order.is_deferred(entity, column)})


def dependency_order(template: Template) -> list[str]:
    """Entity names, each after the entities it depends on; level by level, each level in template order."""
    sorter = TopologicalSorter({name: upstream_entities(template, name) for name in template.entities})
    sorter.prepare()
    position = {name: i for i, name in enumerate(template.entities)}
    ranked: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        ranked.extend(ready)
        sorter.done(*ready)
    return ranked


def chain_depth(template: Template) -> dict[str, int]:
    """Per entity, how many loads wait one after another behind its own load.

    ``0`` for an entity nothing references; otherwise one more than the deepest entity that
    references it. The import schedules deeper entities' steps first: they are on the longest
    chain of loads, which bounds the run's duration.
    """
    depth: dict[str, int] = {}
    for name in reversed(dependency_order(template)):
        dependents = [other for other in template.entities if name in upstream_entities(template, other)]
        depth[name] = 1 + max(depth[other] for other in dependents) if dependents else 0
    return depth

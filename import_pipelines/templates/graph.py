"""The reference graph of a template's entities.

An acyclic reference makes the referencing entity's asset depend on the referenced one; a self
reference or a reference inside a cycle is *late*: loaded empty and resolved by ``late_seed``.
"""

from __future__ import annotations

from graphlib import TopologicalSorter

from import_pipelines.templates.model import Template


def _reaches(template: Template, start: str, goal: str) -> bool:
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node in seen:
            continue
        seen.add(node)
        stack.extend(ref.entity for ref in template.entities[node].references.values())
    return False


def is_late(template: Template, entity: str, column: str) -> bool:
    """Whether ``entity.column`` is a self reference or closes a cycle (so it is late-seeded)."""
    target = template.entities[entity].references[column].entity
    return target == entity or _reaches(template, target, entity)


def upstream_entities(template: Template, entity: str) -> list[str]:
    """Entities that must be loaded before ``entity`` (its non-late references)."""
    refs = template.entities[entity].references
    return sorted({ref.entity for column, ref in refs.items() if not is_late(template, entity, column)})


def dependency_order(template: Template) -> list[str]:
    """Entity names, each after the entities it depends on (template order among equals)."""
    sorter = TopologicalSorter({name: upstream_entities(template, name) for name in template.entities})
    order = list(sorter.static_order())
    position = {name: i for i, name in enumerate(template.entities)}
    # static_order is a valid order; make it stable by re-sorting each ready level by template order
    ranked: list[str] = []
    done: set[str] = set()
    remaining = list(order)
    while remaining:
        ready = [n for n in remaining if set(upstream_entities(template, n)) <= done]
        ready.sort(key=position.__getitem__)
        ranked.extend(ready)
        done.update(ready)
        remaining = [n for n in remaining if n not in done]
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

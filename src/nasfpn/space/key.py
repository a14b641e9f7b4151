"""Canonical keys: one hash per network, however its action sequence was written.

A search samples many sequences that build the same network (docs section 1: "sum is
symmetric"). The key lets it replay a reward instead of training the same network twice.

What counts as the same network is decided on the graph the model builds, after
:meth:`Genotype.trace` has added the absorbed nodes:

- nodes are the inputs (labelled by level) and the cells (labelled by level, op, output or not);
  every cell has its own conv, so two identical cells are two nodes, not one;
- a ``sum`` cell adds its two inputs and its absorbed nodes, so all of them are edges with the
  one role ``"sum"``: swapping the inputs, or trading an input for an absorbed node at the same
  level, builds the same network (resizing a node already at the cell's level is the identity);
- a ``global_pool`` cell is not symmetric: its edges have the roles ``"coarse"`` and ``"fine"``
  (:meth:`Genotype.coarse_and_fine`, tensorflow/tpu ``nasfpn.py``), its absorbed nodes the role
  ``"absorb"``; swapping inputs at different levels keeps the roles, at equal levels it does not;
- the construction order is not part of the network, so independent cells may be reordered.

Two genotypes build the same network exactly when these labelled graphs are isomorphic with
each input node kept in place. A plain Merkle hash (each node hashed from its inputs) is not
enough: it cannot tell which of two identical cells a later cell reads, so "cells 8 and 9 both
read cell 5, cell 6 is its twin read by cell 10" would hash like "cell 8 reads 5, cells 9 and
10 read 6". The key therefore uses the classic individualisation-refinement canonical form
(as in nauty, on graphs of a dozen nodes): colour every node by its label, refine the colours by
the coloured inputs *and* consumers of each node until stable, and where a colour class still
has several nodes, try each of them as "the first one", refine again and keep the smallest
description. Nodes with the same inputs and consumers are interchangeable, so only one of them
is tried, which keeps even many identical cells cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence

from nasfpn.space.genotype import Genotype

Edge = tuple[str, int]  # (role, node)


def genotype_key(genotype: Genotype) -> str:
    """The canonical key of a valid genotype: the first 16 hex digits of a sha256."""
    genotype.validate()
    labels, inputs = _graph(genotype)
    consumers: list[list[Edge]] = [[] for _ in labels]
    for node, edges in enumerate(inputs):
        for role, source in edges:
            consumers[source].append((role, node))
    form = _canonical_form(labels, inputs, consumers, _rank(labels))
    text = repr(("nasfpn-key-v1", genotype.min_level, genotype.max_level, form))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _graph(genotype: Genotype) -> tuple[list[tuple], list[list[Edge]]]:
    """Node labels and incoming edges ``(role, source)`` of the network a genotype builds."""
    labels: list[tuple] = [("input", level) for level in genotype.levels]
    inputs: list[list[Edge]] = [[] for _ in genotype.levels]
    for k, plan in enumerate(genotype.trace()):
        cell = plan.cell
        labels.append(("cell", cell.level, cell.op, cell.is_output))
        if cell.op == "sum":
            edges = [("sum", cell.input_a), ("sum", cell.input_b)]
            edges += [("sum", j) for j in plan.absorbs]
        else:
            coarse, fine = genotype.coarse_and_fine(k)
            edges = [("coarse", coarse), ("fine", fine)] + [("absorb", j) for j in plan.absorbs]
        inputs.append(edges)
    return labels, inputs


def _rank(values: Sequence[Hashable]) -> list[int]:
    """Replace each value by its rank among the distinct values (an invariant renaming)."""
    order = {value: i for i, value in enumerate(sorted(set(values)))}
    return [order[value] for value in values]


def _refine(colours: list[int], inputs: list[list[Edge]], consumers: list[list[Edge]]) -> list[int]:
    """Split colour classes by the colours of each node's inputs and consumers until stable."""
    while True:
        signatures = [
            (
                colours[v],
                tuple(sorted((role, colours[u]) for role, u in inputs[v])),
                tuple(sorted((role, colours[w]) for role, w in consumers[v])),
            )
            for v in range(len(colours))
        ]
        refined = _rank(signatures)
        if len(set(refined)) == len(set(colours)):
            return refined
        colours = refined


def _canonical_form(
    labels: list[tuple],
    inputs: list[list[Edge]],
    consumers: list[list[Edge]],
    colours: list[int],
) -> tuple:
    colours = _refine(colours, inputs, consumers)
    classes: dict[int, list[int]] = {}
    for v, colour in enumerate(colours):
        classes.setdefault(colour, []).append(v)
    tied = [members for _, members in sorted(classes.items()) if len(members) > 1]
    if not tied:
        # Every node has its own colour: describe the graph with colours as node names.
        order = sorted(range(len(labels)), key=colours.__getitem__)
        return tuple(
            (labels[v], tuple(sorted((role, colours[u]) for role, u in inputs[v]))) for v in order
        )
    forms = []
    tried: set[tuple] = set()
    for v in tied[0]:
        neighbourhood = (tuple(sorted(inputs[v])), tuple(sorted(consumers[v])))
        if neighbourhood in tried:
            continue  # a twin of a node already tried: swapping the two is an automorphism
        tried.add(neighbourhood)
        individualised = [2 * c + 1 for c in colours]
        individualised[v] = 2 * colours[v]  # just below its old class, above lower classes
        forms.append(_canonical_form(labels, inputs, consumers, individualised))
    return min(forms)

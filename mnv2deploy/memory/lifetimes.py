"""Tensor lifetimes in execution order and the bytes alive before and during every op.

A tensor lives from the op that produces it (graph inputs: from the start) to the last op that reads it
(graph outputs: to the end). "Before op i" counts tensors made earlier and still needed by op i or later;
"during op i" adds op i's outputs, since a sequential runtime needs inputs and outputs at the same time.
The static peak is the largest "during" total: what an ideal planner with no fragmentation would need.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph


@dataclass(frozen=True)
class Lifetime:
    name: str
    nbytes: int
    first: int  # producing op index; -1 for a graph input
    last: int  # last reading op index; len(ops) for a graph output


@dataclass(frozen=True)
class OpMemory:
    index: int
    op_type: str
    name: str
    before_bytes: int
    during_bytes: int
    output_bytes: int


@dataclass(frozen=True)
class LifetimeReport:
    lifetimes: tuple[Lifetime, ...]
    timeline: tuple[OpMemory, ...]
    static_peak_bytes: int
    peak_op: OpMemory | None
    peak_tensors: tuple[Lifetime, ...]  # alive during the peak op, largest first
    largest_tensor: Lifetime | None
    total_activation_bytes: int  # every activation summed: what a planner that never reuses would need


def compute_lifetimes(graph: Graph) -> tuple[Lifetime, ...]:
    n = len(graph.ops)
    first: dict[str, int] = {name: -1 for name in graph.inputs if name in graph.tensors}
    last: dict[str, int] = {}
    for op in graph.ops:
        for name in op.inputs:
            if name in graph.tensors:
                last[name] = op.index
        for name in op.outputs:
            if name in graph.tensors:
                first.setdefault(name, op.index)
    for name in graph.outputs:
        if name in graph.tensors:
            last[name] = n
    out = []
    for name, start in first.items():
        out.append(Lifetime(name, graph.tensors[name].nbytes, start, max(last.get(name, start), start)))
    return tuple(out)


def _alive_during(lt: Lifetime, i: int) -> bool:
    return lt.first <= i <= lt.last and not (lt.first == -1 and lt.last == -1)


def analyze_lifetimes(graph: Graph) -> LifetimeReport:
    lifetimes = compute_lifetimes(graph)
    n = len(graph.ops)
    # Difference arrays keep this linear in ops + tensors (big graphs have thousands of each).
    before = [0] * (n + 1)
    for lt in lifetimes:
        lo = max(lt.first + 1, 0) if lt.first >= 0 else 0
        hi = min(lt.last, n - 1)
        if lo <= hi:
            before[lo] += lt.nbytes
            before[hi + 1] -= lt.nbytes
    out_bytes = [0] * n
    for lt in lifetimes:
        if 0 <= lt.first < n:
            out_bytes[lt.first] += lt.nbytes
    timeline, running = [], 0
    for op in graph.ops:
        running += before[op.index]
        timeline.append(OpMemory(op.index, op.op_type, op.name, running, running + out_bytes[op.index],
                                 out_bytes[op.index]))
    peak = max(timeline, key=lambda m: m.during_bytes, default=None)
    peak_tensors: tuple[Lifetime, ...] = ()
    if peak is not None:
        peak_tensors = tuple(sorted((lt for lt in lifetimes if _alive_during(lt, peak.index)),
                                    key=lambda lt: -lt.nbytes))
    largest = max(lifetimes, key=lambda lt: lt.nbytes, default=None)
    static_peak = peak.during_bytes if peak else sum(lt.nbytes for lt in lifetimes)
    return LifetimeReport(lifetimes, tuple(timeline), static_peak, peak, peak_tensors, largest,
                          sum(lt.nbytes for lt in lifetimes))

"""A run's DAG laid out on the server for an SVG: each step a box in the column of its depth (the longest
path from a step with no inputs), edges as curves from an input's step to the step that reads it.

Laying out here costs microseconds for any pipeline a person draws, needs no JavaScript, and reads the DAG
as every run stores it (``RunInfo.dag``: nodes with ``inputs`` such as ``{"df": "load[0]"}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evergreen.store import StepRunInfo

from ._render import duration

BOX_W = 180
BOX_H = 56
GAP_X = 56
GAP_Y = 20
PAD = 8
#: Characters of a step's name a box shows (the full name is its tooltip).
LABEL_CHARS = 22


@dataclass(frozen=True)
class Box:
    """A step drawn at ``(x, y)``: its name, status, and the line under the name (duration, cache hit)."""

    name: str
    label: str
    status: str
    detail: str
    x: int
    y: int


@dataclass(frozen=True)
class Drawing:
    """What the template draws: the canvas size, the boxes, and each edge as an SVG path."""

    width: int
    height: int
    boxes: list[Box]
    edges: list[str]
    box_w: int = BOX_W
    box_h: int = BOX_H


def layout(dag: Mapping[str, Any], steps: Sequence[StepRunInfo]) -> Drawing:
    """The drawing of ``dag`` with each step's status and timing from ``steps`` (a step not recorded yet is
    ``pending``)."""
    nodes = [str(n["name"]) for n in dag.get("nodes", [])]
    parents = {str(n["name"]): _parents(n, nodes) for n in dag.get("nodes", [])}
    depth: dict[str, int] = {}
    for name in nodes:  # stored in definition order, so every input's step comes first
        depth[name] = 1 + max((depth.get(p, 0) for p in parents[name]), default=-1)
    columns: dict[int, list[str]] = {}
    for name in nodes:
        columns.setdefault(depth[name], []).append(name)
    by_name = {s.name: s for s in steps}
    where: dict[str, tuple[int, int]] = {}
    boxes = []
    for column, names in sorted(columns.items()):
        for row, name in enumerate(names):
            x, y = PAD + column * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y)
            where[name] = (x, y)
            step = by_name.get(name)
            boxes.append(Box(name, _label(name), step.status if step else "pending", _detail(step), x, y))
    edges = []
    for name in nodes:
        x2, y2 = where[name]
        for parent in parents[name]:
            x1, y1 = where[parent]
            start, end = (x1 + BOX_W, y1 + BOX_H // 2), (x2, y2 + BOX_H // 2)
            bend = (end[0] - start[0]) // 2
            edges.append(
                f"M{start[0]},{start[1]} C{start[0] + bend},{start[1]} {end[0] - bend},{end[1]} {end[0]},{end[1]}"
            )
    width = PAD * 2 + (len(columns) * (BOX_W + GAP_X) - GAP_X if columns else 0)
    height = PAD * 2 + (max(len(c) for c in columns.values()) * (BOX_H + GAP_Y) - GAP_Y if columns else 0)
    return Drawing(width, height, boxes, edges)


def _parents(node: Mapping[str, Any], known: list[str]) -> list[str]:
    """The steps whose outputs ``node`` reads (``"load[0]"`` → ``load``), each once, in input order."""
    found: list[str] = []
    for source in dict(node.get("inputs") or {}).values():
        parent = str(source).rpartition("[")[0]
        if parent in known and parent not in found:
            found.append(parent)
    return found


def _label(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def _detail(step: StepRunInfo | None) -> str:
    if step is None:
        return "pending"
    if step.status == "cached":
        return "cache hit"
    if step.duration_s is None:
        return step.status
    tries = f", {step.attempts} tries" if step.attempts > 1 else ""
    return f"{step.status}, {duration(step.duration_s)}{tries}"

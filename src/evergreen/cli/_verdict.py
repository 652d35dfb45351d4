"""A gate's verdict for the terminal, as ``evergreen train`` and ``evergreen models validate`` print it: the
metric, candidate against production and the trivial baseline on the same rows, and each refusal's reason."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.text import Text

from ._context import console

if TYPE_CHECKING:
    from evergreen.evaluation import GateReport


def number(value: float | None) -> str:
    """A metric value for people: four significant digits, ``-`` when there is none."""
    if value is None:
        return "-"
    return "nan" if math.isnan(value) else f"{value:.4g}"


def print_verdict(ref: str, report: GateReport) -> None:
    """The gate's verdict on version ``ref`` (e.g. ``churn@3``), in a few lines."""
    metric = report.gate.metric
    word = ("passed", "green") if report.passed else ("refused", "yellow")
    console.print(Text.assemble(f"gate on {metric}, {report.rows} fresh test rows: {ref} ", word))
    candidate = report.candidate.metrics.get(metric)
    baseline = report.candidate.baseline.metrics.get(metric)
    if report.primary is not None:
        p = report.primary
        interval = (
            f", {p.confidence:.0%} interval [{number(p.ci_low)}, {number(p.ci_high)}]"
            if p.ci_low is not None and p.ci_high is not None
            else f", McNemar p={number(p.p_value)}"
            if p.p_value is not None
            else ""
        )
        console.print(
            f"  {metric}: candidate {number(p.candidate)}, production {number(p.production)}, "
            f"baseline {number(baseline)} (improvement {p.improvement + 0.0:+.4g}{interval})"
        )
    else:
        console.print(
            f"  {metric}: candidate {number(candidate)}, production none (first model), baseline {number(baseline)}"
        )
    for check in report.failed:
        console.print(Text.assemble("  ", ("✗", "yellow"), f" {check.name}: {check.detail}"))
    console.print(f"  verdict: {report.verdict}")

"""Judge the ``skew`` monitor: the feature store's skew check over one window of a deployment's predictions.

Unlike the other monitors, skew is not a function of the logged window alone: each served feature value
is compared with the value the feature view gives offline for the same entity at the prediction's time,
which needs the views' sources. So it runs :func:`evergreen.serving.skew_check` on the window instead of
judging the frame the other monitors share.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evergreen.config import Settings
from evergreen.errors import EvergreenError, ServingError
from evergreen.serving import SkewReport, skew_check

from ._judge import Judgement
from ._monitors import Monitor

#: How many examples of mismatching values each feature keeps in a stored result.
EXAMPLES = 3


def judge_skew(monitor: Monitor, deployment: str, start: datetime, end: datetime, settings: Settings) -> Judgement:
    """The skew monitor's verdict on the window ``[start, end)`` of ``deployment``: the share of compared
    feature values that differ from the offline ones, with per-feature details. A deployment without feature
    views, or a check that cannot run (a view's source unreadable), is ``no_data`` with the reason."""
    try:
        report = skew_check(deployment, since=start, until=end, tolerance=monitor.tolerance, settings=settings)
    except ServingError as e:
        return Judgement("no_data", None, monitor.threshold, 0, {"reason": str(e)})
    except EvergreenError as e:
        return Judgement("no_data", None, monitor.threshold, 0, {"reason": f"the skew check cannot run: {e}"})
    details = skew_details(report)
    if report.compared < monitor.min_rows:
        reason = f"{report.compared} predictions to compare (need {monitor.min_rows})"
        return Judgement("no_data", None, monitor.threshold, report.compared, {**details, "reason": reason})
    compared = sum(f.compared for f in report.features)
    mismatched = sum(f.mismatched for f in report.features)
    share = mismatched / compared if compared else 0.0
    status = "breached" if share > monitor.threshold else "ok"
    return Judgement(status, share, monitor.threshold, report.compared, details)


def skew_details(report: SkewReport) -> dict[str, Any]:
    """What a stored skew result keeps: the view versions, the predictions compared and skipped, and per
    feature the values compared and mismatched, the rate, the largest difference and a few examples."""
    return {
        "views": report.views,
        "predictions": report.predictions,
        "compared": report.compared,
        "skipped": report.skipped,
        "skewed": report.skewed,
        "features": {
            name: {
                "view": f.view,
                "compared": f.compared,
                "mismatched": f.mismatched,
                "mismatch_rate": f.mismatch_rate,
                "max_abs_diff": f.max_abs_diff,
                "examples": f.examples[:EXAMPLES],
            }
            for name, f in report.named()
        },
    }

"""``loop_history``: a System's recent loop read back from the store, on a project the quickstart made."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from evergreen.config import load_settings
from evergreen.data import csv, ingest
from evergreen.errors import DataValidationError
from evergreen.system import load_system, loop_history, systems_status

# The quickstart project is shared with the browser tests (tests/conftest.py): same worker, built once.
pytestmark = [pytest.mark.xdist_group("ui-browser"), pytest.mark.timeout(300)]


def test_the_history_has_quality_drift_labels_and_the_events_that_explain_them(ui_project: Path) -> None:
    settings = load_settings(ui_project, environ={})
    system = load_system(settings)
    live = [v.version for v in systems_status(settings=settings)[0].live]
    history = loop_history(system, live=live, settings=settings)

    assert history.system == "churn"
    assert history.metric == "roc_auc"
    assert len(history.quality) >= 10  # one window per simulated day after the first release
    ends = [p.window_end for p in history.quality]
    assert ends == sorted(ends)
    judged = [p for p in history.quality if p.value is not None]
    assert judged
    assert all(0.0 <= p.value <= 1.0 for p in judged if p.value is not None)
    assert all(p.threshold is not None for p in judged)
    assert {p.version for p in history.quality} >= {1, 2}  # the line crosses a release
    assert history.labelled_share is not None
    assert 0.0 < history.labelled_share <= 1.0
    assert history.label_delay_s is not None

    features = set(history.drift[-1].features)
    assert {"tenure_months", "monthly_fee"} <= features
    assert all(v is None or v >= 0 for p in history.drift for v in p.features.values())
    # A share above 1 is a drifted column and only that, whether its test is a distance or a p-value (ks_p).
    for point in history.drift:
        for name, share in point.features.items():
            if share is not None:
                assert (share >= 1) if name in point.drifted else (share <= 1), (point.window_end, name, share)
    # A window still waiting for labels draws no bound (its stored threshold is the monitor's raw setting).
    assert all(p.threshold is None for p in history.quality if p.status not in ("ok", "breached"))

    kinds = {m.kind for m in history.markers}
    assert "release" in kinds
    assert [m.at for m in history.markers] == sorted(m.at for m in history.markers)
    assert history.live_since is not None


def test_a_refused_ingest_shows_as_blocked_data_with_its_reason(ui_project: Path, tmp_path: Path) -> None:
    settings = load_settings(ui_project, environ={})
    system = load_system(settings)
    broken = tmp_path / "broken.csv"
    pd.DataFrame({"customer_id": ["a"], "monthly_fee": ["not a number"]}).to_csv(broken, index=False)
    with pytest.raises(DataValidationError):
        ingest("churn", csv(str(broken)), settings=settings)
    history = loop_history(system, settings=settings)
    blocked = [m for m in history.markers if m.kind == "blocked"]
    assert blocked
    assert "broken.csv" in blocked[-1].text
    assert "refused: " in blocked[-1].text

"""The quickstart's day-by-day table: one line a day in an 80-column terminal, whole sentences where there is room."""

from __future__ import annotations

from rich.console import Console

from evergreen.cli._day_table import DayTable
from evergreen.system import DayRecord


def _days() -> list[DayRecord]:
    return [
        DayRecord(
            day=1, date="2024-05-01", data_version="churn@8", live_version="v1", online_quality=0.7, static_quality=0.7
        ),
        DayRecord(
            day=13,
            date="2024-05-13",
            event="broken feed (fee in cents)",
            data_version="—",
            validation="blocked: monthly_fee range (400 failing; values look 100x larger: a unit change?)",
            live_version="v3",
            online_quality=0.752,
            static_quality=0.696,
        ),
        DayRecord(
            day=18,
            date="2024-05-18",
            event="concept drift",
            data_version="churn@24",
            drifted=["logins_last_30d", "monthly_fee", "support_tickets"],
            alerts=["quality:roc_auc", "bias"],
            retrain="schedule 0 3 * * 1",
            gate="passed",
            release="released v11 (canary)",
            live_version="v10, v11",
            online_quality=0.527,
            static_quality=0.507,
        ),
        DayRecord(
            day=24,
            date="2024-05-24",
            data_version="churn@30",
            retrain="daily after an alert",
            gate="refused: roc_auc 0.756 vs production 0.879",
            release="kept production (v10 refused)",
            live_version="v9",
            online_quality=0.844,
            static_quality=0.582,
        ),
    ]


def _render(width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    table = DayTable("roc_auc", width)
    for record in _days():
        table.add(record)
    console.print(table.table)
    return console.export_text().splitlines()


def test_at_80_columns_each_day_is_one_line_with_every_value_whole() -> None:
    lines = _render(80)
    assert all(len(line) <= 80 for line in lines)
    rows = {line.split()[0]: line for line in lines if line.strip()[:3].rstrip("*").strip().isdigit()}
    assert set(rows) == {"1", "13*", "18*", "24"}
    assert "churn@8" in rows["1"]
    assert "0.700" in rows["1"]
    assert "blocked" in rows["13*"]
    assert "0.752" in rows["13*"]
    assert "0.696" in rows["13*"]
    assert "schedule → v11 canary" in rows["18*"]
    assert "v10,v11" in rows["18*"]
    assert " 3 " in rows["18*"]
    assert "daily → refused" in rows["24"]
    assert "v9" in rows["24"]
    caption = " ".join(lines[lines.index(next(line for line in lines if line.startswith("*"))) :])
    assert "13: broken feed (fee in cents)" in caption
    assert "18: concept drift" in caption


def test_a_wide_terminal_keeps_the_sentences() -> None:
    text = "\n".join(_render(400))
    assert "blocked: monthly_fee range (400 failing" in text
    assert "logins_last_30d, monthly_fee, support_tickets" in text
    assert "schedule → passed → v11 (canary)" in text
    assert "daily after an alert → refused: roc_auc 0.756 vs production 0.879 → kept production" in text

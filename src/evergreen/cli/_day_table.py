"""The quickstart's day-by-day table, readable in the terminal it runs in: whole sentences where there is room,
one line a day in 80 columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.table import Column, Table
from rich.text import Text

if TYPE_CHECKING:
    from evergreen.system import DayRecord

#: Narrower terminals get the compact table: every value that matters on one line a day.
WIDE = 140

#: What the retraining policy's reasons (``evergreen.system.decide``) are called in the compact table.
_WHY = {"no model yet": "first", "quality alert": "alert", "daily after an alert": "daily"}


class DayTable:
    """A Rich table that grows by one row per simulated day."""

    def __init__(self, metric: str, width: int) -> None:
        self.compact = width < WIDE
        self._events: list[str] = []
        if self.compact:
            self.table = Table(
                Column("day", justify="right"),
                Column("data", no_wrap=True),
                Column("drift", justify="right"),
                "alerts",
                Column("retrain → release", no_wrap=True),
                Column("live", no_wrap=True),
                Column("loop", justify="right"),
                Column("never", justify="right"),
                title=f"Day by day: online {metric} of the loop and of a model never retrained",
                title_justify="left",
                box=box.SIMPLE_HEAD,
                pad_edge=False,
                collapse_padding=True,
            )
        else:
            self.table = Table(
                "day",
                "event",
                Column("data", min_width=8),
                "drifted",
                "alerts",
                "training → gate → release",
                "live",
                f"online {metric}",
                "never retrained",
                title="Day by day",
                title_justify="left",
            )

    def add(self, record: DayRecord) -> None:
        """Add the row of one day."""
        if not self.compact:
            self.table.add_row(
                str(record.day),
                record.event,
                _data(record),
                ", ".join(record.drifted),
                ", ".join(record.alerts),
                _training(record),
                record.live_version,
                number(record.online_quality),
                number(record.static_quality),
            )
            return
        if record.event:
            self._events.append(f"{record.day}: {record.event}")
            self.table.caption = "* " + "; ".join(self._events)
            self.table.caption_justify = "left"
        blocked = record.validation.startswith("blocked")
        self.table.add_row(
            f"{record.day}*" if record.event else str(record.day),
            Text("blocked", style="red") if blocked else record.data_version,
            str(len(record.drifted)) if record.drifted else "",
            ", ".join(name.split(":")[0] for name in record.alerts),
            _training_compact(record),
            record.live_version.replace(" ", ""),
            number(record.online_quality),
            number(record.static_quality),
        )


def number(value: float | None) -> str:
    """A quality figure with three decimals, or nothing for a day without labels."""
    return "" if value is None else f"{value:.3f}"


def _data(record: DayRecord) -> Text | str:
    """The day's data version, or why validation blocked it (in red)."""
    if record.validation.startswith("blocked"):
        return Text(record.validation, style="red")
    return record.data_version


def _training(record: DayRecord) -> Text | str:
    """Why a model was trained, the gate's verdict (a refusal in yellow) and what was released, with the
    training window's summary under it."""
    if not record.retrain:
        return ""
    gate = (record.gate, "yellow" if record.gate.startswith("refused") else "")
    why = "schedule" if record.retrain.startswith("schedule") else record.retrain
    line = Text.assemble(why, " → ", gate, " → ", record.release.removeprefix("released "))
    return Text.assemble(line, "\n", (record.window, "dim")) if record.window else line


def _training_compact(record: DayRecord) -> Text | str:
    """``schedule → v3 canary`` (the gate passed it), or ``alert → refused`` in yellow when the gate did not."""
    if not record.retrain:
        return ""
    why = "schedule" if record.retrain.startswith("schedule") else _WHY.get(record.retrain, record.retrain)
    if record.gate != "passed":
        return Text.assemble(why, " → ", ("refused", "yellow"))
    released = record.release.removeprefix("released ").replace("(", "").replace(")", "")
    return f"{why} → {released}"

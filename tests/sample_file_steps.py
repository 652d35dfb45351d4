"""Steps that return files, folders, bytes and figures; at module level so worker processes can import them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in workers or CI

import matplotlib.pyplot as plt
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

import evergreen as eg


@eg.step
def export_csv(folder: str, days: int) -> Path:
    """A CSV written as users write them (tz-aware times), returned as its path."""
    times = pd.date_range("2026-03-01", periods=days, freq="D", tz="Europe/Paris")
    frame = pd.DataFrame({"event_time": times, "label": ["churned", "stayed"] * (days // 2) + ["stayed"] * (days % 2)})
    path = Path(folder) / "events.csv"
    frame.to_csv(path, index=False)
    return path


@eg.step
def export_report(folder: str) -> Path:
    """A folder with a nested file."""
    report = Path(folder) / "report"
    (report / "plots").mkdir(parents=True, exist_ok=True)
    (report / "summary.txt").write_text("all good\n")
    (report / "plots" / "data.json").write_text('{"points": 3}')
    return report


@eg.step
def count_rows(csv: Path, report: Path) -> dict[str, object]:
    """Reads the files it was given, as local paths."""
    frame = pd.read_csv(csv, parse_dates=["event_time"])
    return {
        "rows": len(frame),
        "csv_name": csv.name,
        "labels": sorted(frame["label"].unique()),
        "report_files": sorted(p.relative_to(report).as_posix() for p in report.rglob("*") if p.is_file()),
        "summary": (report / "summary.txt").read_text(),
    }


@eg.step
def raw_bytes(n: int) -> bytes:
    return bytes(range(n))


@eg.step
def loss_curve(points: int) -> Figure:
    figure, axes = plt.subplots(figsize=(3, 2), dpi=50)
    axes.plot(range(points), [1 / (i + 1) for i in range(points)])
    plt.close(figure)
    return figure


@eg.step
def scatter(points: int) -> go.Figure:
    return go.Figure(go.Scatter(x=list(range(points)), y=[i * i for i in range(points)], name="squares"))


@eg.step
def image_size(image: bytes, data: bytes) -> list[int]:
    """A downstream step gets a PNG image (bytes) and bytes."""
    return [len(image), len(data), int(image.startswith(b"\x89PNG"))]


@eg.pipeline
def files(folder: str, days: int = 5):
    return count_rows(export_csv(folder, days), export_report(folder))


@eg.pipeline
def figures(points: int = 4):
    return loss_curve(points), scatter(points), image_size(loss_curve(points), raw_bytes(points))

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

import evergreen as eg


@eg.step
def export(days: int) -> Path:  # a file (or a folder): copied into the artifact store
    times = pd.date_range("2026-03-01", periods=days, freq="D", tz="UTC")
    pd.DataFrame({"event_time": times, "signups": range(days)}).to_csv("signups.csv", index=False)
    return Path("signups.csv")


@eg.step
def chart(csv: Path) -> Figure:  # receives a Path to a local copy of the file
    frame = pd.read_csv(csv, parse_dates=["event_time"])
    figure, axes = plt.subplots(figsize=(4, 2))
    axes.plot(frame["event_time"], frame["signups"])
    plt.close(figure)
    return figure  # stored as PNG


@eg.pipeline
def report(days: int = 7):
    return chart(export(days))


if __name__ == "__main__":
    image = report.run(days=7).output  # evergreen.artifacts.PngImage: the PNG's bytes
    image.save("signups.png")

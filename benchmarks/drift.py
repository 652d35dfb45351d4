"""Drift of a new batch against a stored reference profile, beside reading the batch and beside Evidently.

    .venv/bin/python benchmarks/drift.py [--sizes 100000 1000000] [--repeat 5] [--evidently-repeat 1]

For each size, a reference and a current batch (15 numeric and 5 categorical columns, seeded) are written
as Parquet files; drift is injected in 6 columns of the current batch:

- ``num_0``: a mean shift of 0.2 standard deviations (what PSI at 0.1-0.2 misses),
- ``num_1``: the standard deviation x1.5,
- ``num_2``: values 1000x larger (a unit change),
- ``num_3``: an exponential's scale x1.3,
- ``cat_0``: a new category mix,
- ``cat_1``: an unseen category on 10% of the rows.

Rows timed (the median of ``--repeat`` runs each):

- *read (floor)*: ``pyarrow.parquet.read_table`` of the current batch;
- *drift(profile, table)*: ``evergreen.data.drift`` of the read table against the reference profile
  (stored as JSON and loaded back, so no reference row is used);
- *read + drift*: both, the cost of checking a batch that arrives as a file;
- *drift(profile, path)*: drift given the Parquet path (DuckDB reads it);
- *Evidently DataDriftPreset*: ``Report.run`` on the two pandas DataFrames (read beforehand, not timed).

Profiling the reference is printed separately: it is done once per dataset version.

Evidently is not a dependency of Evergreen and this script installs nothing: when ``import evidently``
fails, its rows are skipped with the commands to run it in an environment of its own:

    python -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install evidently "pandas<3" -e /work/main   # Evidently 0.7 needs pandas 2
    /tmp/evidently-venv/bin/python benchmarks/drift.py
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # this folder also holds profile.py, which would shadow the standard library's
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

NUMERIC = [f"num_{i}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
DRIFTED = ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]
AIMS = {100_000: 0.5, 1_000_000: 2.5}  # seconds, drift of a batch against a stored profile
EVIDENTLY_SETUP = (
    "python -m venv /tmp/evidently-venv && /tmp/evidently-venv/bin/pip install evidently 'pandas<3' -e {repo}\n"
    "/tmp/evidently-venv/bin/python benchmarks/drift.py"
)


def make_frame(n: int, seed: int, *, drifted: bool = False) -> pd.DataFrame:
    """``n`` rows of 15 numeric columns of varied shapes and 5 categorical ones; with ``drifted``, the
    6 columns of ``DRIFTED`` are changed as the module docstring says."""
    rng = np.random.default_rng(seed)
    levels = lambda k: np.array([f"v{j}" for j in range(k)])  # noqa: E731
    x13 = rng.normal(0, 1, n)
    x13[rng.random(n) < 0.05] = np.nan
    cat_1 = levels(6)[rng.choice(6, n, p=[0.3, 0.25, 0.2, 0.15, 0.05, 0.05])]
    if drifted:
        cat_1 = np.where(rng.random(n) < 0.1, "unseen", cat_1)
    weights = np.arange(1, 51) / np.arange(1, 51).sum()
    return pd.DataFrame(
        {
            "num_0": rng.normal(10.4 if drifted else 10.0, 2, n),
            "num_1": rng.normal(0, 1.5 if drifted else 1.0, n),
            "num_2": rng.lognormal(3, 0.5, n) * (1000 if drifted else 1),
            "num_3": rng.exponential(1.3 if drifted else 1.0, n),
            "num_4": rng.normal(-5, 3, n),
            "num_5": rng.lognormal(0, 1, n),
            "num_6": rng.uniform(0, 100, n),
            "num_7": rng.poisson(3, n),
            "num_8": rng.standard_t(3, n),
            "num_9": np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(3, 1, n)),
            "num_10": rng.integers(0, 2, n),
            "num_11": rng.gamma(2, 2, n),
            "num_12": rng.normal(1000, 50, n).round(),
            "num_13": x13,
            "num_14": rng.beta(2, 5, n),
            "cat_0": levels(4)[rng.choice(4, n, p=[0.25, 0.3, 0.25, 0.2] if drifted else [0.4, 0.3, 0.2, 0.1])],
            "cat_1": cat_1,
            "cat_2": levels(50)[rng.choice(50, n, p=weights)],
            "cat_3": np.where(rng.random(n) < 0.3, "yes", "no"),
            "cat_4": levels(300)[rng.zipf(1.5, n).clip(1, 300) - 1],
        }
    )


def write(df: pd.DataFrame, path: Path) -> Path:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return path


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median wall time of ``repeat`` calls of ``fn``, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# -- Evidently -----------------------------------------------------------------------------------------


def evidently_version() -> tuple[str | None, str]:
    """Evidently's version, or ``None`` and why it cannot be imported here."""
    try:
        import evidently
    except ImportError as e:
        return None, f"not installed ({e})" if "evidently" not in str(e) else "not installed"
    except Exception as e:  # noqa: BLE001 - e.g. an Evidently release that does not run on this pandas
        return None, f"fails to import: {type(e).__name__}: {e}"
    return str(getattr(evidently, "__version__", "?")), ""


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> Any:
    """Evidently's DataDriftPreset on the two frames (the 0.7 API, or the older ``metric_preset`` one)."""
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        return Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    except ImportError:
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report

        report = Report(metrics=[DataDriftPreset()])
        report.run(reference_data=reference, current_data=current)
        return report


def evidently_drifted(result: Any) -> list[str] | None:
    """The columns Evidently flagged, read from its result (``None`` if its layout is not recognised)."""
    data = result.dict()
    flagged: list[str] = []
    found = False
    for metric in data.get("metrics", []):
        # 0.7: {"metric_id": "ValueDrift(column=num_0,...)", "value": score, "config": {... threshold ...}}
        name = str(metric.get("metric_name") or metric.get("metric_id") or "")
        if name.startswith("ValueDrift("):
            found = True
            column = name.split("column=", 1)[1].split(",", 1)[0].rstrip(")")
            config = metric.get("config", {})
            threshold = float(config.get("threshold", 0.1))
            method = str(config.get("method", ""))
            value = float(metric["value"])
            is_p_value = "p_value" in method.lower() or method in {"ks", "chisquare", "z"}
            if (value < threshold) if is_p_value else (value >= threshold):
                flagged.append(column)
        # older: {"metric": "DataDriftTable", "result": {"drift_by_columns": {...}}}
        by_columns = (
            metric.get("result", {}).get("drift_by_columns") if isinstance(metric.get("result"), dict) else None
        )
        if by_columns:
            found = True
            flagged += [name for name, r in by_columns.items() if r.get("drift_detected")]
    if not found:
        return None
    order = {c: i for i, c in enumerate(NUMERIC + CATEGORICAL)}
    return sorted(set(flagged), key=lambda c: order.get(c, len(order)))


# -- main ----------------------------------------------------------------------------------------------


def verdict(flagged: list[str] | None) -> str:
    if flagged is None:
        return "(could not read the result)"
    missed = [c for c in DRIFTED if c not in flagged]
    false = [c for c in flagged if c not in DRIFTED]
    if not missed and not false:
        return "exactly the 6 drifted columns"
    return f"missed {missed or 'none'}, false alarms {false or 'none'}"


def measure(n: int, folder: Path, repeat: int, evidently_repeat: int, console: Any) -> list[dict[str, Any]]:
    from evergreen.data._drift import drift
    from evergreen.data._profile import Profile, profile_table

    console.print(f"[bold]{n:,} rows x 20 columns[/bold]: writing the reference and the current batch …")
    ref_path = write(make_frame(n, seed=1), folder / f"reference_{n}.parquet")
    cur_path = write(make_frame(n, seed=2, drifted=True), folder / f"current_{n}.parquet")
    pq.read_table(cur_path)  # warm the OS cache, as for every later read

    profile_seconds, stored = timed(lambda: profile_table(ref_path).to_json(), 1)
    (folder / f"reference_{n}.profile.json").write_text(stored)
    reference = Profile.from_json((folder / f"reference_{n}.profile.json").read_text())
    console.print(f"  reference profiled once in {profile_seconds:.2f} s ({len(stored) / 1024:.0f} KiB of JSON)")

    read_s, table = timed(lambda: pq.read_table(cur_path), repeat)
    drift_s, report = timed(lambda: drift(reference, table), repeat)
    both_s, _ = timed(lambda: drift(reference, pq.read_table(cur_path)), repeat)
    path_s, _ = timed(lambda: drift(reference, cur_path), repeat)
    ours = report.drifted
    rows = [
        {"size": n, "what": "read the batch (floor)", "s": read_s},
        {"size": n, "what": "drift(profile, table)", "s": drift_s, "aim": AIMS.get(n), "flagged": ours},
        {"size": n, "what": "read + drift", "s": both_s, "aim": AIMS.get(n)},
        {"size": n, "what": "drift(profile, parquet path)", "s": path_s, "aim": AIMS.get(n)},
    ]
    if evidently_version()[0] is not None:
        ref_df, cur_df = pq.read_table(ref_path).to_pandas(), table.to_pandas()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev_s, result = timed(lambda: run_evidently(ref_df, cur_df), evidently_repeat)
        rows.append({"size": n, "what": "Evidently DataDriftPreset", "s": ev_s, "flagged": evidently_drifted(result)})
    console.print(f"  evergreen flagged: {ours} → {verdict(ours)}")
    if len(rows) == 5:
        console.print(f"  Evidently flagged: {rows[-1]['flagged']} → {verdict(rows[-1]['flagged'])}")
    return rows


def results_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title="Drift of a 20-column batch against a stored reference profile (median seconds)")
    for header in ("rows", "what", "seconds", "x floor", "Evidently / this", "aim", "flagged vs truth"):
        table.add_column(header, justify="left" if header in ("what", "flagged vs truth") else "right")
    for n in sorted({r["size"] for r in rows}):
        group = [r for r in rows if r["size"] == n]
        floor = group[0]["s"]
        evidently = next((r["s"] for r in group if r["what"].startswith("Evidently")), None)
        for r in group:
            aim = r.get("aim")
            aim_text = "" if aim is None else ("[green]" if r["s"] < aim else "[red]") + f"< {aim:g} s"
            ratio = (
                ""
                if evidently is None or r["what"].startswith(("Evidently", "read the"))
                else f"{evidently / r['s']:.0f}x"
            )
            table.add_row(
                f"{n:,}",
                r["what"],
                f"{r['s']:.3f}",
                f"{r['s'] / floor:.1f}",
                ratio,
                aim_text,
                verdict(r["flagged"]) if "flagged" in r else "",
            )
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="runs per evergreen timing (median)")
    parser.add_argument("--evidently-repeat", type=int, default=1, help="runs per Evidently timing (median)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console

    import evergreen

    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log or a pipe: rich would wrap the table at 80 columns
        console = Console(width=max(console.width, 150))
    import duckdb

    version, problem = evidently_version()
    console.print(
        f"Python {platform.python_version()}, evergreen {getattr(evergreen, '__version__', '?')}, "
        f"DuckDB {duckdb.__version__}, pyarrow {pa.__version__}, pandas {pd.__version__}, "
        f"Evidently {version or problem}"
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="evergreen-drift-bench-") as tmp:
        for n in args.sizes:
            rows += measure(n, Path(tmp), args.repeat, args.evidently_repeat, console)
    console.print(results_table(rows))
    if version is None:
        repo = Path(__file__).resolve().parent.parent
        console.print(
            f"Evidently rows skipped: Evidently {problem} (it is no dependency of evergreen). To compare, run this "
            "script in an environment of its own (Evidently 0.7 needs pandas < 3 there):\n"
            + EVIDENTLY_SETUP.format(repo=repo)
        )
    console.print(
        "drift() reads no reference rows: the reference is its stored profile (JSON). Truth: drift injected in "
        f"{', '.join(DRIFTED)}; every other column has the same distribution in both batches."
    )


if __name__ == "__main__":
    main()

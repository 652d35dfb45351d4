"""Point-in-time training sets and online lookups: Evergreen's feature store beside Feast and raw DuckDB.

    .venv/bin/python benchmarks/features.py [--entities 10000] [--rows-per-entity 100] [--labels 100000]
                                            [--repeat 3] [--scale] [--no-feast] [--feast-venv /tmp/feast-venv]

One run makes the data once (seeded) and times, each engine in a fresh process of its own so that its
peak memory is its own (``VmHWM``, the high-water mark of the process's resident set since it started;
not ``getrusage``'s ``ru_maxrss``, which on Linux carries over the resident set of the parent that forked
it, here the process holding the generated data):

- *training set*: ``--labels`` label rows (entity id, label time, label id) over ``entities x
  rows-per-entity`` feature rows (5 float features, event times over 30 days; label times from a day
  before the first to two days after the last, so about 1% of labels have no feature row before them).
  Evergreen: ``training_set`` on a feature view over a dataset version (ingested once, untimed);
  raw DuckDB: one hand-written ``ASOF LEFT JOIN`` of the same Parquet file; Feast: ``get_historical_features``
  with the local provider and the file offline store. TTL 40 days everywhere (longer than any gap, so
  it never applies). The median of ``--repeat`` runs, and each result is checked: Evergreen's and raw
  DuckDB's rows must be identical; Feast's must match on every row it returns, and the rows it drops
  are counted.
- *online lookup*: after materializing (untimed), the p50 of 2,000 lookups of 1 and of 100 random
  entities: Evergreen's ``OnlineFeatures.lookup`` (what the server calls) on its SQLite online store,
  a plain ``sqlite3`` primary-key lookup on a table of the same values, and Feast's
  ``get_online_features`` on its SQLite online store.
- ``--scale``: 10M feature rows (100k entities x 100) and 1M labels, Evergreen (a view over the
  Parquet file) and raw DuckDB only.

Feast is not a dependency of Evergreen and is never installed into its environment: the script runs it
with the Python of ``--feast-venv`` and, when that does not exist yet, creates it there with
``python3 -m venv`` and ``pip install feast`` (pass ``--no-feast`` to skip Feast).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # this folder also holds profile.py, which would shadow the standard library's
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import pandas as pd

FEATURES = [f"f{i}" for i in range(5)]
TTL_DAYS = 40
DAYS = 30
START = pd.Timestamp("2024-01-01", tz="UTC")
LOOKUPS = 2_000
FEAST_VERSION = "0.67.0"


# ------------------------------------------------------------------------------------------ the data


def make_data(folder: Path, entities: int, per_entity: int, labels: int, seed: int = 0) -> tuple[Path, Path]:
    """features.parquet (customer_id, event_timestamp, f0..f4) and labels.parquet (customer_id,
    event_timestamp, label_id, label); one feature row per (entity, time)."""
    rng = np.random.default_rng(seed)
    n = entities * per_entity
    micros = rng.integers(0, DAYS * 86_400 * 1_000_000, n)
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(entities, dtype=np.int64), per_entity),
            "event_timestamp": (START + pd.to_timedelta(micros, unit="us")).astype("datetime64[us, UTC]"),
            **{f: rng.normal(size=n) for f in FEATURES},
        }
    ).drop_duplicates(["customer_id", "event_timestamp"])
    features = folder / "features.parquet"
    frame.sample(frac=1.0, random_state=seed).to_parquet(features, index=False, row_group_size=1_000_000)
    del frame
    label_micros = rng.integers(-86_400 * 1_000_000, (DAYS + 2) * 86_400 * 1_000_000, labels)
    label_frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, entities, labels).astype(np.int64),
            "event_timestamp": (START + pd.to_timedelta(label_micros, unit="us")).astype("datetime64[us, UTC]"),
            "label_id": np.arange(labels, dtype=np.int64),
            "label": rng.integers(0, 2, labels),
        }
    )
    path = folder / "labels.parquet"
    label_frame.to_parquet(path, index=False)
    return features, path


# ------------------------------------------------------------------------------------- the workers


def peak_mb() -> float:
    return high_water_mb()


def high_water_mb() -> float:
    """This process's peak resident set in MB (``VmHWM`` of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark's memory figures need Linux")


def worker_evergreen(folder: Path, repeat: int, via: str) -> dict[str, Any]:
    """Evergreen's training set, timed, in this (fresh) process."""
    from evergreen.config import load_settings
    from evergreen.data import parquet
    from evergreen.features import FeatureView, training_set

    settings = load_settings(folder / "evergreen", environ={})
    source: Any = "bench" if via == "dataset" else parquet(folder / "features.parquet")
    view = FeatureView(
        name="stats", entity="customer_id", timestamp="event_timestamp", source=source, features=FEATURES,
        ttl=timedelta(days=TTL_DAYS),
    )  # fmt: skip
    labels = pd.read_parquet(folder / "labels.parquet")
    before = peak_mb()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = training_set(labels, [view], timestamp="event_timestamp", settings=settings)
        times.append(time.perf_counter() - started)
    peak = peak_mb()  # before writing the result for the check, which is not part of the job
    result.to_parquet(folder / "out-evergreen.parquet", index=False)
    return {"seconds": statistics.median(times), "peak_mb": peak, "before_mb": before, "rows": len(result)}


def worker_ingest(folder: Path) -> dict[str, Any]:
    """The feature rows as a dataset version of the Evergreen project (made once, untimed, in a process
    of its own so that the training-set worker's peak memory is the training set's)."""
    from evergreen.config import load_settings
    from evergreen.data import ingest, parquet

    started = time.perf_counter()
    version = ingest(
        "bench", parquet(folder / "features.parquet"), settings=load_settings(folder / "evergreen", environ={})
    )
    return {"version": version.ref, "seconds": time.perf_counter() - started}


def worker_duckdb(folder: Path, repeat: int) -> dict[str, Any]:
    """The same ASOF join written by hand in DuckDB: the floor."""
    import duckdb

    labels_path = str(folder / "labels.parquet")
    features_path = str(folder / "features.parquet")
    ttl = TTL_DAYS * 86_400 * 1_000_000
    fresh = f"f.event_timestamp >= l.event_timestamp - to_microseconds({ttl})"
    selects = ", ".join(f"CASE WHEN {fresh} THEN f.{c} END AS {c}" for c in FEATURES)
    query = f"""
        SELECT l.*, {selects}
        FROM read_parquet('{labels_path}') l
        ASOF LEFT JOIN read_parquet('{features_path}') f
          ON l.customer_id = f.customer_id AND l.event_timestamp >= f.event_timestamp
        ORDER BY l.label_id
    """
    before = peak_mb()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()  # connecting counts, as in Evergreen's (a fresh connection per call)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        result = con.sql(query).arrow().read_all().to_pandas()
        times.append(time.perf_counter() - started)
        con.close()
    peak = peak_mb()
    result.to_parquet(folder / "out-duckdb.parquet", index=False)
    return {"seconds": statistics.median(times), "peak_mb": peak, "before_mb": before, "rows": len(result)}


def worker_online(folder: Path, entities: int) -> dict[str, Any]:
    """Evergreen's online lookups (after materializing) beside a plain sqlite3 primary-key lookup."""
    from evergreen.config import load_settings
    from evergreen.data import ingest, parquet
    from evergreen.features import OnlineFeatures, apply, materialize

    settings = load_settings(folder / "evergreen-online", environ={})
    ingest("bench", parquet(folder / "features.parquet"), settings=settings)
    sys.path.insert(0, str(folder))
    (folder / "bench_views.py").write_text(
        textwrap.dedent(f"""
        from datetime import timedelta
        from evergreen.features import FeatureView
        stats = FeatureView(name="stats", entity="customer_id", timestamp="event_timestamp", source="bench",
                            features={FEATURES!r}, ttl=timedelta(days={TTL_DAYS}))
        """)
    )
    apply("bench_views", settings=settings)
    materialize(settings=settings)
    online = OnlineFeatures(["stats"], settings=settings)
    rng = np.random.default_rng(1)
    ids = [str(i) for i in range(entities)]
    result: dict[str, Any] = {}
    for size in (1, 100):
        picks = [[ids[j] for j in rng.integers(0, entities, size)] for _ in range(LOOKUPS)]
        result[f"evergreen_{size}_ms"] = _p50_ms(online.lookup, picks)
    # A plain table of the same newest values, looked up by primary key with the standard library.
    newest = pd.read_parquet(folder / "features.parquet").sort_values("event_timestamp").groupby("customer_id").last()
    db = folder / "plain.db"
    with sqlite3.connect(db) as con:
        con.execute(f"CREATE TABLE t (id TEXT PRIMARY KEY, {', '.join(f + ' REAL' for f in FEATURES)}) WITHOUT ROWID")
        values = newest[FEATURES].to_numpy()
        marks = ", ".join("?" * len(FEATURES))
        data = [(str(i), *map(float, v)) for i, v in zip(newest.index, values, strict=True)]
        con.executemany(f"INSERT INTO t VALUES (?, {marks})", data)
    con = sqlite3.connect(db)
    one = f"SELECT {', '.join(FEATURES)} FROM t WHERE id = ?"

    def plain(keys: list[str]) -> list[Any]:
        if len(keys) == 1:
            return con.execute(one, keys).fetchall()
        return con.execute(
            f"SELECT id, {', '.join(FEATURES)} FROM t WHERE id IN ({', '.join('?' * len(keys))})", keys
        ).fetchall()

    for size in (1, 100):
        picks = [[ids[j] for j in rng.integers(0, entities, size)] for _ in range(LOOKUPS)]
        result[f"sqlite_{size}_ms"] = _p50_ms(plain, picks)
    # Evergreen's answers equal the plain table's (the newest row of each entity).
    sample = [ids[j] for j in rng.integers(0, entities, 100)]
    mine = online.lookup(sample)
    result["online_matches"] = all(
        all(abs(row[f] - newest.loc[int(i), f]) < 1e-12 for f in FEATURES) for i, row in zip(sample, mine, strict=True)
    )
    online.close()
    return result


def _p50_ms(call: Any, picks: list[list[str]]) -> float:
    for keys in picks[:100]:  # warm-up
        call(keys)
    times = []
    for keys in picks:
        started = time.perf_counter()
        call(keys)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


FEAST_SCRIPT = r"""
import json, statistics, sys, time, warnings
from datetime import timedelta
from pathlib import Path
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
folder, repeat, entities, ttl_days = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
features = [f"f{i}" for i in range(5)]
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64
repo = folder / "feast-repo"
repo.mkdir(exist_ok=True)
(repo / "feature_store.yaml").write_text(
    f"project: bench\nregistry: {repo}/registry.db\nprovider: local\n"
    f"offline_store:\n  type: file\nonline_store:\n  type: sqlite\n  path: {repo}/online.db\n"
    "entity_key_serialization_version: 3\n"
)
store = FeatureStore(repo_path=str(repo))
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
source = FileSource(path=str(folder / "features.parquet"), timestamp_field="event_timestamp")
view = FeatureView(name="stats", entities=[customer], ttl=timedelta(days=ttl_days),
                   schema=[Field(name=f, dtype=Float64) for f in features], source=source, online=True)
store.apply([customer, view])
labels = pd.read_parquet(folder / "labels.parquet")
refs = [f"stats:{f}" for f in features]
def high_water_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
before = high_water_mb()
times = []
for _ in range(repeat):
    started = time.perf_counter()
    out = store.get_historical_features(entity_df=labels, features=refs).to_df()
    times.append(time.perf_counter() - started)
peak = high_water_mb()
out.to_parquet(folder / "out-feast.parquet", index=False)
result = {"seconds": statistics.median(times), "peak_mb": peak, "before_mb": before, "rows": len(out)}
import feast
result["version"] = feast.__version__
start = pd.Timestamp("2023-12-01", tz="UTC").to_pydatetime()
end = pd.Timestamp("2024-03-01", tz="UTC").to_pydatetime()
store.materialize(start, end)
rng = np.random.default_rng(1)
for size in (1, 100):
    picks = [[{"customer_id": int(j)} for j in rng.integers(0, entities, size)] for _ in range(300)]
    for rows in picks[:20]:
        store.get_online_features(features=refs, entity_rows=rows).to_dict()
    spent = []
    for rows in picks:
        started = time.perf_counter()
        store.get_online_features(features=refs, entity_rows=rows).to_dict()
        spent.append(time.perf_counter() - started)
    result[f"feast_{size}_ms"] = statistics.median(spent) * 1000
print("RESULT " + json.dumps(result))
"""


def run_worker(args: list[str], python: str = sys.executable, timeout: float = 3600) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([python, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(
        f"worker {args[:3]} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )


def feast_python(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} and installing feast=={FEAST_VERSION} there (once; never into Evergreen's venv)")
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"feast=={FEAST_VERSION}"], check=True)
    return str(python)


# -------------------------------------------------------------------------------------- the checks


def check_same(folder: Path, other: str) -> tuple[int, int, float]:
    """(rows compared, rows of Evergreen's result missing from ``other``'s, largest difference)."""
    mine = pd.read_parquet(folder / "out-evergreen.parquet").set_index("label_id").sort_index()
    theirs = pd.read_parquet(folder / f"out-{other}.parquet").set_index("label_id").sort_index()
    common = mine.index.intersection(theirs.index)
    a = mine.loc[common, FEATURES].to_numpy(dtype=float)
    b = theirs.loc[common, FEATURES].to_numpy(dtype=float)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        raise AssertionError(
            f"{other}: nulls differ from Evergreen's on {int((np.isnan(a) != np.isnan(b)).sum())} values"
        )
    worst = float(np.nanmax(np.abs(a - b))) if len(common) else 0.0
    if worst > 1e-12:
        raise AssertionError(f"{other}: values differ from Evergreen's by up to {worst}")
    return len(common), len(mine.index.difference(theirs.index)), worst


# ---------------------------------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--rows-per-entity", type=int, default=100)
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", action="store_true", help="also 10M feature rows x 1M labels")
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--feast-venv", type=Path, default=Path("/tmp/feast-venv"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--via", default="dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work = {
            "ingest": lambda: worker_ingest(args.folder),
            "evergreen": lambda: worker_evergreen(args.folder, args.repeat, args.via),
            "duckdb": lambda: worker_duckdb(args.folder, args.repeat),
            "online": lambda: worker_online(args.folder, args.entities),
        }[args.worker]
        print("RESULT " + json.dumps(work()))
        return

    me = [str(Path(__file__).resolve())]
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="evergreen-bench-features-") as tmp:
        folder = Path(tmp)
        n = args.entities * args.rows_per_entity
        print(f"data: {n:,} feature rows ({args.entities:,} entities x {args.rows_per_entity}), {args.labels:,} labels")
        make_data(folder, args.entities, args.rows_per_entity, args.labels)
        common = ["--folder", str(folder), "--repeat", str(args.repeat), "--entities", str(args.entities)]
        run_worker([*me, "--worker", "ingest", *common])
        eg = run_worker([*me, "--worker", "evergreen", *common])
        raw = run_worker([*me, "--worker", "duckdb", *common])
        compared, missing, _ = check_same(folder, "duckdb")
        assert (compared, missing) == (args.labels, 0), (compared, missing)
        print(f"checked: Evergreen and raw DuckDB give identical values on all {compared:,} label rows")
        nulls = int(pd.read_parquet(folder / "out-evergreen.parquet")[FEATURES[0]].isna().sum())
        rows.append(("training set: Evergreen training_set", f"{eg['seconds']:.2f} s", f"{eg['peak_mb']:.0f} MB",
                     f"{eg['rows']:,} rows ({nulls:,} with nulls); {eg['before_mb']:.0f} MB before it"))  # fmt: skip
        rows.append(("training set: raw DuckDB ASOF JOIN", f"{raw['seconds']:.2f} s", f"{raw['peak_mb']:.0f} MB",
                     f"{raw['rows']:,} rows; Evergreen {eg['seconds'] / raw['seconds']:.2f}x its time"))  # fmt: skip
        feast: dict[str, Any] | None = None
        if not args.no_feast:
            python = feast_python(args.feast_venv)
            assert python is not None
            feast = run_worker(["-c", FEAST_SCRIPT, str(folder), str(args.repeat), str(args.entities), str(TTL_DAYS)],
                               python=python)  # fmt: skip
            compared, missing, _ = check_same(folder, "feast")
            print(f"checked: Feast {feast['version']} equals Evergreen on the {compared:,} rows it returned; "
                  f"it dropped {missing:,} label rows")  # fmt: skip
            rows.append((f"training set: Feast {feast['version']} get_historical_features", f"{feast['seconds']:.2f} s",
                         f"{feast['peak_mb']:.0f} MB", f"{feast['rows']:,} rows ({missing:,} dropped); Evergreen "
                         f"{feast['seconds'] / eg['seconds']:.1f}x faster"))  # fmt: skip
        online = run_worker([*me, "--worker", "online", *common])
        assert online["online_matches"], "Evergreen's online values differ from the newest rows"
        for size in (1, 100):
            rows.append((f"online lookup, {size} entit{'y' if size == 1 else 'ies'}: Evergreen (SQLite)",
                         f"{online[f'evergreen_{size}_ms']:.3f} ms", "", "p50"))  # fmt: skip
            rows.append((f"online lookup, {size}: plain sqlite3 primary key", f"{online[f'sqlite_{size}_ms']:.3f} ms",
                         "", "p50"))  # fmt: skip
            if feast is not None:
                theirs = feast[f"feast_{size}_ms"]
                ratio = theirs / online[f"evergreen_{size}_ms"]
                rows.append((f"online lookup, {size}: Feast SQLite online store", f"{theirs:.3f} ms", "",
                             f"p50; Evergreen {ratio:.0f}x faster"))  # fmt: skip
    if args.scale:
        with tempfile.TemporaryDirectory(prefix="evergreen-bench-features-scale-") as tmp:
            folder = Path(tmp)
            print("scale data: 10,000,000 feature rows (100,000 entities x 100), 1,000,000 labels")
            make_data(folder, 100_000, 100, 1_000_000, seed=2)
            common = ["--folder", str(folder), "--repeat", "1", "--via", "parquet"]
            eg = run_worker([*me, "--worker", "evergreen", *common])
            raw = run_worker([*me, "--worker", "duckdb", *common])
            compared, missing, _ = check_same(folder, "duckdb")
            assert (compared, missing) == (1_000_000, 0), (compared, missing)
            rows.append(("10M x 1M: Evergreen training_set (view over the Parquet file)", f"{eg['seconds']:.2f} s",
                         f"{eg['peak_mb']:.0f} MB", "identical to raw DuckDB"))  # fmt: skip
            rows.append(("10M x 1M: raw DuckDB ASOF JOIN", f"{raw['seconds']:.2f} s", f"{raw['peak_mb']:.0f} MB", ""))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'job':<{width}}  {'time':>10}  {'peak RSS':>9}  notes")
    for job, seconds, memory, note in rows:
        print(f"{job:<{width}}  {seconds:>10}  {memory:>9}  {note}")


if __name__ == "__main__":
    main()

"""Sources: CSV, Parquet, SQL and DuckDB read in bounded chunks, incremental reads by watermark, bad input.

Inputs are written into tmp_path by each test; SQL runs on SQLite files through SQLAlchemy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from evergreen.data._sources import URI_FORMS, Source, csv, duckdb, from_uri, parquet, sql
from evergreen.errors import DataSourceError

START = datetime(2024, 1, 1)


def events(n: int = 10, first_id: int = 0) -> pa.Table:
    """n rows, one an hour from START: id, ts, value, name."""
    ids = list(range(first_id, first_id + n))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "ts": pa.array([START + timedelta(hours=i) for i in ids], pa.timestamp("s")),
            "value": [i / 2 for i in ids],
            "name": [f"n{i % 3}" for i in ids],
        }
    )


def write_csv(path: Path, table: pa.Table) -> Path:
    lines = [",".join(table.column_names)]
    for row in table.to_pylist():
        lines.append(",".join(v.isoformat(sep=" ") if isinstance(v, datetime) else str(v) for v in row.values()))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sqlite(path: Path, table: pa.Table) -> str:
    """The table in a SQLite file through SQLAlchemy (timestamps stored as SQLAlchemy's DateTime text)."""
    return write_sql(f"sqlite:///{path}", table)


def write_sql(url: str, table: pa.Table) -> str:
    """The table as ``events`` in the database at ``url``."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    events_table = sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.Integer),
        sa.Column("ts", sa.DateTime),
        sa.Column("value", sa.Float),
        sa.Column("name", sa.String),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(events_table.insert(), table.to_pylist())
    engine.dispose()
    return url


def make_source(kind: str, tmp_path: Path, table: pa.Table) -> Source:
    """The same table behind each kind of source."""
    if kind == "csv":
        return csv(write_csv(tmp_path / "events.csv", table))
    if kind == "parquet":
        (tmp_path / "events").mkdir()
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), tmp_path / "events" / "part-0.parquet")
        pq.write_table(table.slice(half), tmp_path / "events" / "part-1.parquet")
        return parquet(tmp_path / "events")
    if kind == "sql":
        return sql(write_sqlite(tmp_path / "events.db", table), "SELECT id, ts, value, name FROM events ORDER BY id")
    pq.write_table(table, tmp_path / "events.parquet")
    return duckdb(f"SELECT * FROM read_parquet('{tmp_path / 'events.parquet'}') ORDER BY id")


KINDS = ["csv", "parquet", "sql", "duckdb"]


# --- reading and chunking -----------------------------------------------------------------------------


def test_csv_infers_types_and_parses_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "id,price,city,seen,day\n1,2.5,Oslo,2024-01-01 10:00:00,2024-01-01\n2,3.0,Rome,2024-01-02T11:30:00,2024-01-02\n"
    )
    table = csv(path).read()
    assert table.schema.types == [pa.int64(), pa.float64(), pa.string(), pa.timestamp("s"), pa.date32()]
    assert table.column("seen").to_pylist() == [datetime(2024, 1, 1, 10), datetime(2024, 1, 2, 11, 30)]
    description = csv(path).describe()
    assert description == {"kind": "csv", "path": str(path.resolve()), "delimiter": ",", "options": {}}
    json.dumps(description)


def test_a_250k_row_csv_comes_in_three_bounded_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("id,x,ts\n")
        f.writelines(f"{i},{i * 0.5},2024-01-01 00:{i // 60 % 60:02d}:{i % 60:02d}\n" for i in range(250_000))
    batches = list(csv(path).batches(chunk_rows=100_000))
    assert [b.num_rows for b in batches] == [100_000, 100_000, 50_000]
    assert [b.column("id")[0].as_py() for b in batches] == [0, 100_000, 200_000]
    assert all(b.schema == batches[0].schema for b in batches)
    assert batches[0].schema.field("ts").type == pa.timestamp("s")


def test_small_blocks_are_regrouped_into_full_chunks(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", events(50))
    batches = list(csv(path, block_size=256).batches(chunk_rows=7))  # many CSV blocks of a few rows each
    assert [b.num_rows for b in batches] == [7] * 7 + [1]
    assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(50))


def test_csv_options_reach_pyarrow(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", events(3))
    table = csv(path, column_types={"id": pa.string()}, include_columns=["id", "name"]).read()
    assert table.schema == pa.schema([("id", pa.string()), ("name", pa.string())])
    assert csv(path, column_types={"id": pa.string()}).describe()["options"] == {"column_types": {"id": "string"}}


def test_unknown_csv_option_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="unknown CSV option 'colum_types'; did you mean 'column_types'"):
        csv(tmp_path / "e.csv", colum_types={})


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_reads_the_same_table_in_chunks(kind: str, tmp_path: Path) -> None:
    table = events(10)
    batches = list(make_source(kind, tmp_path, table).batches(chunk_rows=4))
    assert [b.num_rows for b in batches] == [4, 4, 2]
    got = pa.Table.from_batches(batches)
    assert got.column_names == ["id", "ts", "value", "name"]
    assert got.column("id").to_pylist() == list(range(10))
    assert got.column("value").to_pylist() == table.column("value").to_pylist()


def test_stopping_early_closes_the_input_and_a_new_read_starts_over(tmp_path: Path) -> None:
    source = make_source("sql", tmp_path, events(10))
    stream = source.batches(chunk_rows=3)
    assert next(stream).column("id").to_pylist() == [0, 1, 2]
    stream.close()  # closes the connection; a leak would fail the test as a ResourceWarning
    assert source.read(chunk_rows=3).num_rows == 10


def test_progress_bar_goes_to_stderr_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_source("csv", tmp_path, events(10))
    assert source.read().num_rows == 10
    assert capsys.readouterr().err == ""
    assert source.read(progress=True).num_rows == 10
    captured = capsys.readouterr()
    assert "10 rows read" in captured.err
    assert "reading CSV file 'events.csv'" in captured.err
    assert captured.out == ""


def test_chunk_rows_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="chunk_rows must be a positive integer, but got 0"):
        csv(tmp_path / "e.csv").batches(chunk_rows=0)


# --- CSV bad input ------------------------------------------------------------------------------------


def test_missing_csv_file_is_named_with_a_suggestion(tmp_path: Path) -> None:
    write_csv(tmp_path / "events.csv", events(2))
    with pytest.raises(DataSourceError, match=r"CSV file '.*evnts\.csv' not found; did you mean 'events\.csv'\?"):
        csv(tmp_path / "evnts.csv").read()


def test_empty_csv_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(
        DataSourceError, match=r"CSV file '.*e\.csv' is empty \(0 bytes\): it has no header and no rows"
    ):
        csv(tmp_path / "e.csv").read()


def test_a_binary_file_given_as_csv_is_refused_with_the_byte_and_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")
    with pytest.raises(DataSourceError, match=r"'.*photo.csv' is not utf8 text: its header holds byte 0x89 at byte 0"):
        csv(path).read()


def test_csv_with_only_a_header_has_no_rows(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("id,ts,value\n")
    with pytest.raises(DataSourceError, match=r"has a header \(id, ts, value\) but no data rows"):
        list(csv(tmp_path / "e.csv").batches())


@pytest.mark.parametrize(("given", "found"), [(",", ";"), (";", ","), (",", "\t")])
def test_csv_with_another_delimiter_than_given_names_the_one_found(tmp_path: Path, given: str, found: str) -> None:
    (tmp_path / "e.csv").write_text(f"id{found}price{found}city\n1{found}2.5{found}Oslo\n2{found}3.5{found}Rome\n")
    with pytest.raises(
        DataSourceError,
        match=re.escape(f"looks {found!r}-separated, not {given!r}-separated")
        + f".*{re.escape(f'delimiter={found!r}')}",
    ):
        csv(tmp_path / "e.csv", delimiter=given).read()


def test_delimiter_is_detected_when_not_given(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("id;price;city\n1;2,5;Oslo\n2;3,5;Rome\n")
    source = csv(tmp_path / "e.csv", decimal_point=",")
    table = source.read()
    assert table.column_names == ["id", "price", "city"]
    assert table.column("price").to_pylist() == [2.5, 3.5]
    assert source.describe()["delimiter"] == ";"


def test_a_single_column_csv_is_not_mistaken_for_a_wrong_delimiter(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("city\nOslo\nRome\n")
    assert csv(tmp_path / "e.csv", delimiter=",").read().column("city").to_pylist() == ["Oslo", "Rome"]


def test_repeated_header_row_is_refused_with_its_row_number(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("id,city\n1,Oslo\n2,Rome\nid,city\n3,Lima\n")
    with pytest.raises(DataSourceError, match=r"data row 3 \(line 4\) repeats the header.*concatenated"):
        csv(tmp_path / "e.csv").read()


def test_repeated_header_after_typed_rows_is_found_too(tmp_path: Path) -> None:
    # two files concatenated: types are inferred from the first block, the header comes far later
    first, second = write_csv(tmp_path / "a.csv", events(2000)), write_csv(tmp_path / "b.csv", events(5, 2000))
    (tmp_path / "both.csv").write_text(first.read_text() + second.read_text())
    with pytest.raises(DataSourceError, match=r"data row 2001 \(line 2002\) repeats the header"):
        list(csv(tmp_path / "both.csv", block_size=4096).batches(chunk_rows=500))


def test_a_later_value_that_does_not_fit_the_inferred_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("id,city\n" + "".join(f"{i},Oslo\n" for i in range(1000)) + "unknown,Rome\n")
    with pytest.raises(DataSourceError, match=r"column 'id' was read as int64 .* holds 'unknown'.*column_types=\{'id'"):
        csv(path, block_size=1024).read()


def test_a_row_with_too_many_fields_is_named(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("id,city\n1,Oslo\n2,Rome,Lima\n")
    with pytest.raises(DataSourceError, match=r"cannot be parsed with delimiter ',': .*Expected 2 columns, got 3"):
        csv(tmp_path / "e.csv").read()


# --- Parquet ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["{d}", "{d}/", "{d}/*.parquet", "{d}/**/*.parquet"])
def test_parquet_folder_and_globs_read_files_in_sorted_order(tmp_path: Path, spec: str) -> None:
    folder = tmp_path / "parts"
    (folder / "sub").mkdir(parents=True)
    pq.write_table(events(4, 8), folder / "sub" / "part-2.parquet")  # "sub/…" sorts after "part-…"
    pq.write_table(events(4, 4), folder / "part-1.parquet")
    pq.write_table(events(4, 0), folder / "part-0.parquet")
    source = parquet(spec.format(d=folder))
    expected = list(range(12)) if "*" not in spec or "**" in spec else list(range(8))
    assert source.read(chunk_rows=5).column("id").to_pylist() == expected
    assert [b.num_rows for b in source.batches(chunk_rows=5)] == [5] * (len(expected) // 5) + [len(expected) % 5]


def test_parquet_files_with_columns_in_another_order_keep_the_first_files_order(tmp_path: Path) -> None:
    pq.write_table(events(2), tmp_path / "a.parquet")
    pq.write_table(events(2, 2).select(["name", "value", "ts", "id"]), tmp_path / "b.parquet")
    table = parquet(tmp_path / "*.parquet").read()
    assert table.column_names == ["id", "ts", "value", "name"]
    assert table.column("id").to_pylist() == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["day[1].parquet", "day[1].csv"])
def test_a_file_whose_name_has_brackets_is_that_file_not_a_pattern(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text("id,value\n0,1.5\n1,2.5\n")
    else:
        pq.write_table(events(2), path)
    (tmp_path / "day1.parquet").touch()  # what the pattern day[1] would match instead
    assert from_uri(str(path)).read().column("id").to_pylist() == [0, 1]


def test_missing_parquet_file_glob_and_folder_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match=r"Parquet file '.*nope\.parquet' not found"):
        parquet(tmp_path / "nope.parquet").read()
    with pytest.raises(DataSourceError, match=r"the glob '.*\*\.parquet' matches no file"):
        parquet(f"{tmp_path}/*.parquet").read()
    with pytest.raises(DataSourceError, match=r"folder '.*' holds no \*\.parquet file"):
        parquet(tmp_path).read()


def test_truncated_parquet_file_is_named_before_any_row_is_yielded(tmp_path: Path) -> None:
    pq.write_table(events(10), tmp_path / "part-0.parquet")
    pq.write_table(events(10, 10), tmp_path / "part-1.parquet")
    data = (tmp_path / "part-1.parquet").read_bytes()
    (tmp_path / "part-1.parquet").write_bytes(data[: len(data) // 2])
    stream = parquet(tmp_path).batches(chunk_rows=5)
    with pytest.raises(DataSourceError, match=r"Parquet file '.*part-1\.parquet' is truncated or not a Parquet file"):
        next(stream)


def test_empty_parquet_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "e.parquet").write_bytes(b"")
    with pytest.raises(DataSourceError, match=r"Parquet file '.*e\.parquet' is empty \(0 bytes\)"):
        parquet(tmp_path / "e.parquet").read()


def test_parquet_without_rows_is_refused(tmp_path: Path) -> None:
    pq.write_table(events(0), tmp_path / "e.parquet")
    with pytest.raises(DataSourceError, match=r"Parquet source '.*e\.parquet' has no rows \(its columns: id, ts"):
        parquet(tmp_path / "e.parquet").read()


def test_parquet_files_of_different_tables_are_refused(tmp_path: Path) -> None:
    pq.write_table(events(2), tmp_path / "a.parquet")
    pq.write_table(events(2).drop_columns(["name"]), tmp_path / "b.parquet")
    with pytest.raises(DataSourceError, match=r"'.*b\.parquet' has columns .* \(missing \['name'\], extra \[\]\)"):
        parquet(tmp_path).read()


# --- SQL and DuckDB -----------------------------------------------------------------------------------


def test_sql_describe_and_errors_never_show_the_password() -> None:
    source = sql("postgresql+psycopg://ana:s3cret@127.0.0.1:1/shop", "SELECT * FROM orders")
    assert source.describe() == {
        "kind": "sql",
        "url": "postgresql+psycopg://ana:***@127.0.0.1:1/shop",
        "query": "SELECT * FROM orders",
    }
    with pytest.raises(
        DataSourceError, match=r"cannot connect to postgresql\+psycopg://ana:\*\*\*@127\.0\.0\.1:1/shop"
    ) as e:
        source.read()
    assert "s3cret" not in str(e.value)


def test_postgresql_streams_and_filters_in_the_query(pg_url: str) -> None:
    source = sql(write_sql(pg_url, events(10)), "SELECT * FROM events ORDER BY id")
    assert [b.num_rows for b in source.batches(chunk_rows=4)] == [4, 4, 2]
    assert source.read().schema.field("ts").type == pa.timestamp("us")
    newer = source.read(chunk_rows=3, watermark="ts", after=START + timedelta(hours=5))
    assert newer.column("id").to_pylist() == [6, 7, 8, 9]
    with pytest.raises(DataSourceError, match=r"holds timestamp\[us\] values, which do not compare with after='2024"):
        source.read(watermark="ts", after="2024-01-01 05:00:00")


def test_failing_sql_query_is_named(tmp_path: Path) -> None:
    url = write_sqlite(tmp_path / "shop.db", events(3))
    with pytest.raises(
        DataSourceError,
        match=r"SQL query on sqlite:///.*shop\.db failed: no such table: evnts\n  query: SELECT \* FROM evnts",
    ):
        sql(url, "SELECT * FROM evnts;").read()


def test_sql_query_colons_are_literal(tmp_path: Path) -> None:
    url = write_sqlite(tmp_path / "shop.db", events(3))
    table = sql(url, "SELECT id, ':id' AS tag, '10:30' AS at FROM events ORDER BY id").read()
    assert table.to_pylist()[0] == {"id": 0, "tag": ":id", "at": "10:30"}


def test_missing_sqlite_file_is_named_and_not_created(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match=r"SQLite database file '.*nope\.db' not found"):
        sql(f"sqlite:///{tmp_path / 'nope.db'}", "SELECT 1").read()
    assert not (tmp_path / "nope.db").exists()


def test_sql_url_that_is_not_a_url_is_refused() -> None:
    with pytest.raises(DataSourceError, match="is not a SQLAlchemy URL; expected dialect"):
        sql("shop.db", "SELECT 1")


def test_sql_query_without_rows_is_refused(tmp_path: Path) -> None:
    url = write_sqlite(tmp_path / "shop.db", events(3))
    with pytest.raises(DataSourceError, match=r"returned no rows \(columns: id\); there is nothing to read"):
        sql(url, "SELECT id FROM events WHERE id > 100").read()


def test_sql_column_of_mixed_types_asks_for_a_cast(tmp_path: Path) -> None:
    url = write_sqlite(tmp_path / "shop.db", events(3))
    with pytest.raises(DataSourceError, match=r"column 'mixed' of SQL query .* holds int/str values; CAST it"):
        sql(url, "SELECT CASE WHEN id = 1 THEN 'x' ELSE id END AS mixed FROM events").read()


def test_failing_duckdb_query_is_named() -> None:
    with pytest.raises(DataSourceError, match=r"DuckDB query failed: .*nope.*\n  query: SELECT \* FROM nope"):
        duckdb("SELECT * FROM nope").read()


def test_missing_duckdb_database_is_named_and_not_created(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match=r"DuckDB database file '.*nope\.duckdb' not found"):
        duckdb("SELECT 1", database=str(tmp_path / "nope.duckdb")).read()
    assert not (tmp_path / "nope.duckdb").exists()


# --- watermark ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_watermark_returns_only_strictly_newer_rows(kind: str, tmp_path: Path) -> None:
    source = make_source(kind, tmp_path, events(10))
    tie = START + timedelta(hours=5)  # the row with id 5 has exactly this time: not newer
    newer = source.read(chunk_rows=3, watermark="ts", after=tie)
    assert newer.column("id").to_pylist() == [6, 7, 8, 9]
    assert [b.num_rows for b in source.batches(chunk_rows=3, watermark="ts", after=tie)] == [3, 1]
    assert source.read(watermark="ts").num_rows == 10  # the first ingestion: no high-water mark yet
    assert source.read(watermark="id", after=7).column("id").to_pylist() == [8, 9]


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_newer_is_no_rows_not_an_error(kind: str, tmp_path: Path) -> None:
    source = make_source(kind, tmp_path, events(10))
    last = START + timedelta(hours=9)
    assert list(source.batches(watermark="ts", after=last)) == []
    empty = source.read(watermark="ts", after=last)
    assert (empty.num_rows, empty.column_names) == (0, ["id", "ts", "value", "name"])


@pytest.mark.parametrize("kind", KINDS)
def test_missing_watermark_column_is_named_with_the_columns(kind: str, tmp_path: Path) -> None:
    source = make_source(kind, tmp_path, events(10))
    message = r"watermark column 'tss' is not in .*; did you mean 'ts'\?; its columns are: id, ts, value, name"
    with pytest.raises(DataSourceError, match=message):
        source.read(watermark="tss", after=START)
    with pytest.raises(DataSourceError, match=message):
        source.read(watermark="tss")


@pytest.mark.parametrize("kind", KINDS)
def test_watermark_bound_of_another_type_is_refused(kind: str, tmp_path: Path) -> None:
    source = make_source(kind, tmp_path, events(10))
    stored = "string" if kind == "sql" else "timestamp"  # SQLite keeps timestamps as text
    with pytest.raises(
        DataSourceError,
        match=rf"watermark column 'ts' of .* holds {stored}.* values, which do not compare with after=5 \(a int\)",
    ):
        source.read(watermark="ts", after=5)


@pytest.mark.parametrize("kind", ["csv", "parquet", "duckdb"])
def test_string_bound_on_a_timestamp_watermark_asks_for_a_datetime(kind: str, tmp_path: Path) -> None:
    source = make_source(kind, tmp_path, events(10))
    message = r"holds timestamp\[.*\] values, which do not compare with after='2024-01-01 05:00:00' \(a str\)"
    with pytest.raises(DataSourceError, match=message + r"; pass after as a datetime \(a naive one is UTC\)"):
        source.read(watermark="ts", after="2024-01-01 05:00:00")


@pytest.mark.parametrize("kind", KINDS)
def test_a_naive_watermark_and_an_aware_bound_compare_as_utc(kind: str, tmp_path: Path) -> None:
    source = make_source(kind, tmp_path, events(10))
    berlin = timezone(timedelta(hours=2))
    newer = source.read(watermark="ts", after=(START + timedelta(hours=7)).replace(tzinfo=UTC).astimezone(berlin))
    assert newer.column("id").to_pylist() == [8, 9]


def test_sqlite_text_timestamps_in_another_format_compare_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'raw.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (id INTEGER, ts TEXT)"))
        rows = [{"id": i, "ts": (START + timedelta(minutes=i)).isoformat()} for i in range(5)]  # 2024-01-01T00:03:00
        connection.execute(sa.text("INSERT INTO t VALUES (:id, :ts)"), rows)
    engine.dispose()
    newer = sql(url, "SELECT * FROM t").read(watermark="ts", after=START + timedelta(minutes=2))
    assert newer.column("id").to_pylist() == [3, 4]


def test_after_without_watermark_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match=r"after=datetime.* needs watermark=<column name>"):
        make_source("csv", tmp_path, events(3)).read(after=START)


# --- from_uri -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("data/a.csv", {"kind": "csv", "delimiter": None}),
        ("data/a.tsv", {"kind": "csv", "delimiter": "\t"}),
        ("csv:data/a.txt", {"kind": "csv"}),
        ("data/a.parquet", {"kind": "parquet"}),
        ("data/", {"kind": "parquet"}),
        ("data/*.parquet", {"kind": "parquet", "path": "data/*.parquet"}),
        ("parquet:data/a.bin", {"kind": "parquet"}),
        ("duckdb:SELECT 1 AS x", {"kind": "duckdb", "query": "SELECT 1 AS x", "database": ":memory:"}),
        (
            "sql:sqlite:///shop.db SELECT * FROM t",
            {"kind": "sql", "url": "sqlite:///shop.db", "query": "SELECT * FROM t"},
        ),
    ],
)
def test_from_uri_forms(spec: str, expected: dict[str, object]) -> None:
    description = from_uri(spec).describe()
    assert {key: description[key] for key in expected} == expected


def test_from_uri_reads_what_it_names(tmp_path: Path) -> None:
    url = write_sqlite(tmp_path / "shop.db", events(4))
    assert from_uri(f"sql:{url} SELECT id FROM events WHERE id >= 2").read().column("id").to_pylist() == [2, 3]
    assert from_uri("duckdb:SELECT * FROM range(3) AS t(i)").read().column("i").to_pylist() == [0, 1, 2]
    path = write_csv(tmp_path / "e.tsv", events(3))
    path.write_text(path.read_text().replace(",", "\t"))
    assert from_uri(str(path)).read().column_names == ["id", "ts", "value", "name"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("data.xlsx", r"cannot tell what kind of source 'data\.xlsx' is\naccepted forms:\n"),
        ("logs/*.csv", r"for several CSV files use \"duckdb:SELECT \* FROM read_csv\('logs/\*\.csv'\)\""),
        ("sql:sqlite:///shop.db", r"source 'sql:sqlite:///shop\.db' needs a URL and a query: sql:URL QUERY"),
        ("duckdb:  ", r"has no query after 'duckdb:'"),
    ],
)
def test_from_uri_refuses_what_it_cannot_place_and_lists_the_forms(spec: str, message: str) -> None:
    with pytest.raises(DataSourceError, match=message) as e:
        from_uri(spec)
    assert URI_FORMS in str(e.value)


def test_sources_are_recipes_that_read_nothing_when_built(tmp_path: Path) -> None:
    build: list[Callable[[], Source]] = [
        lambda: csv(tmp_path / "later.csv"),
        lambda: parquet(tmp_path / "later/*.parquet"),
        lambda: sql(f"sqlite:///{tmp_path / 'later.db'}", "SELECT 1"),
        lambda: duckdb("SELECT * FROM read_parquet('later.parquet')"),
    ]
    for make in build:
        assert isinstance(make(), Source)
    assert list(tmp_path.iterdir()) == []


def sqlite_text(tmp_path: Path, values: list[str | None]) -> str:
    url = f"sqlite:///{tmp_path / 'text.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (id INTEGER, ts TEXT)"))
        connection.execute(
            sa.text("INSERT INTO t VALUES (:id, :ts)"), [{"id": i, "ts": v} for i, v in enumerate(values)]
        )
    engine.dispose()
    return url


def test_sqlite_iso_text_is_read_as_timestamps_and_other_text_stays_text(tmp_path: Path) -> None:
    aware = sql(sqlite_text(tmp_path, ["2024-05-01 02:00:00+02:00", None, "2024-05-01T01:30:00Z"]), "SELECT * FROM t")
    table = aware.read()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.column("ts").to_pylist() == [
        datetime(2024, 5, 1, tzinfo=UTC),
        None,
        datetime(2024, 5, 1, 1, 30, tzinfo=UTC),
    ]
    (tmp_path / "text.db").unlink()
    mixed = sql(sqlite_text(tmp_path, ["2024-05-01 02:00:00+02:00", "2024-05-01 01:30:00"]), "SELECT * FROM t")
    assert mixed.read().schema.field("ts").type == pa.string()  # naive and aware together: one type cannot hold both
    (tmp_path / "text.db").unlink()
    later = sql(sqlite_text(tmp_path, ["2024-05-01 00:00:00", "2024-05-02 00:00:00", "soon"]), "SELECT * FROM t")
    with pytest.raises(
        DataSourceError, match=r"column 'ts' of SQL query .* held ISO-8601 times in its first rows but a later"
    ):
        later.read(chunk_rows=2)

"""Data: sources, dataset versions, schemas and validation, data tests, profiles, drift, splits.

``ingest(name, source)`` reads a source (``csv``, ``parquet``, ``sql``, ``duckdb``), validates it
against a schema and data tests, profiles it, and records it as an immutable, content-addressed
version (its ``overlap`` says how many of the rows earlier versions already held); ``load``, ``diff``
and ``prune`` work with the versions; ``drift`` compares a batch with a
stored profile; ``split`` holds the reproducible train/test splits, and ``split_version`` makes one
of a version and records it there.

Times follow one rule (``_time``): a date or a timestamp of any unit, naive or zone-aware, is a time; a
naive time is UTC. ``is_time_sql_type``, ``is_time_dtype`` and ``utc_times`` classify and convert columns,
``parse_time`` reads a time a user typed, ``format_epoch`` shows a profile's epoch seconds as a date.

``datasets``, ``versions``, ``attempts`` and ``version_detail`` read the catalogue a page at a time (what
``evergreen data list`` / ``show``, the REST API and the web UI show); ``refused_counts`` counts a page of
datasets' refused attempts; ``models_drawn_from`` names the model versions trained on data drawn from a version
(through a System's training window). ``check_upload`` validates an uploaded CSV or
Parquet file without writing anything; ``start_ingest`` checks it, then ingests it in a background run of
the ``ingest-upload`` pipeline and returns the run's id.

``card_markdown`` and ``card_html`` write a version's data card. The card renderer beneath them is
shared with other cards (the registry's model cards): build ``Section`` objects of facts, ``Table``
objects and notes, then ``render_markdown`` or ``render_html`` (self-contained, every string escaped).
``column_chart`` gives a column's profile as bars (a histogram, or the most frequent values) for the card's
charts and the web UI's alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import lazy_getattr

if TYPE_CHECKING:
    from . import _splits as split
    from ._card import allowed_values, card_html, card_markdown
    from ._catalog import (
        VersionDetail,
        VersionLineage,
        attempts,
        datasets,
        models_drawn_from,
        refused_counts,
        version_detail,
        versions,
    )
    from ._checks import (
        CorrelationRule,
        DataTests,
        LabelRule,
        MissingRule,
        ModeRule,
        OutlierRule,
        UniqueRule,
        run_checks,
    )
    from ._column_charts import ColumnChart, column_chart, top_values
    from ._database import duckdb_cursor
    from ._diff import DatasetDiff, SchemaChange, diff
    from ._document import (
        BAR_COLOR,
        DASH,
        Code,
        Section,
        Table,
        figure_html,
        format_bytes,
        format_count,
        format_number,
        format_value,
        format_when,
        render_html,
        render_markdown,
        style_figure,
    )
    from ._drift import ColumnDrift, DriftReport, DriftThresholds, drift
    from ._entities import entity_key, entity_key_sql, entity_keys
    from ._overlap import Overlap
    from ._profile import ColumnProfile, Profile, profile_table
    from ._profile import quote as quote_identifier
    from ._retention import Pruned, prune
    from ._schema import ColumnSchema, DType, Role, Schema, blank_as_missing, infer_schema
    from ._sources import URI_FORMS, Source, csv, duckdb, from_uri, parquet, source_text, sql
    from ._splits import Split
    from ._steps import check_drift, ingest_dataset, ingest_upload, ingest_upload_pipeline, load_dataset, split_dataset
    from ._time import (
        as_utc,
        format_epoch,
        from_epoch,
        is_time_arrow_type,
        is_time_dtype,
        is_time_sql_type,
        parse_time,
        utc_times,
    )
    from ._uploads import UPLOAD_FORMATS, IngestStarted, UploadSource, check_upload, start_ingest, upload_format
    from ._validation import OBSERVED_LIMITS_NOTE, Failure, ValidationReport, validate
    from ._version_splits import VersionSplit, recorded_splits, split_version
    from ._versions import DatasetVersion, check, ingest, load

# Each name loads with only its own module (and what that imports), so a command that lists datasets does not
# import pandas, pyarrow and DuckDB for reading, validating and profiling data it never reads.
_LAZY: dict[str, tuple[str, str | None]] = {  # name: (module, attribute; None for the module itself)
    "BAR_COLOR": ("._document", "BAR_COLOR"),
    "Code": ("._document", "Code"),
    "ColumnChart": ("._column_charts", "ColumnChart"),
    "ColumnDrift": ("._drift", "ColumnDrift"),
    "ColumnProfile": ("._profile", "ColumnProfile"),
    "ColumnSchema": ("._schema", "ColumnSchema"),
    "CorrelationRule": ("._checks", "CorrelationRule"),
    "DASH": ("._document", "DASH"),
    "DType": ("._schema", "DType"),
    "DataTests": ("._checks", "DataTests"),
    "DatasetDiff": ("._diff", "DatasetDiff"),
    "DatasetVersion": ("._versions", "DatasetVersion"),
    "DriftReport": ("._drift", "DriftReport"),
    "DriftThresholds": ("._drift", "DriftThresholds"),
    "Failure": ("._validation", "Failure"),
    "IngestStarted": ("._uploads", "IngestStarted"),
    "LabelRule": ("._checks", "LabelRule"),
    "MissingRule": ("._checks", "MissingRule"),
    "ModeRule": ("._checks", "ModeRule"),
    "OBSERVED_LIMITS_NOTE": ("._validation", "OBSERVED_LIMITS_NOTE"),
    "OutlierRule": ("._checks", "OutlierRule"),
    "Overlap": ("._overlap", "Overlap"),
    "Profile": ("._profile", "Profile"),
    "Pruned": ("._retention", "Pruned"),
    "Role": ("._schema", "Role"),
    "Schema": ("._schema", "Schema"),
    "SchemaChange": ("._diff", "SchemaChange"),
    "Section": ("._document", "Section"),
    "Source": ("._sources", "Source"),
    "Split": ("._splits", "Split"),
    "Table": ("._document", "Table"),
    "UPLOAD_FORMATS": ("._uploads", "UPLOAD_FORMATS"),
    "URI_FORMS": ("._sources", "URI_FORMS"),
    "UniqueRule": ("._checks", "UniqueRule"),
    "UploadSource": ("._uploads", "UploadSource"),
    "ValidationReport": ("._validation", "ValidationReport"),
    "VersionDetail": ("._catalog", "VersionDetail"),
    "VersionLineage": ("._catalog", "VersionLineage"),
    "VersionSplit": ("._version_splits", "VersionSplit"),
    "allowed_values": ("._card", "allowed_values"),
    "as_utc": ("._time", "as_utc"),
    "attempts": ("._catalog", "attempts"),
    "blank_as_missing": ("._schema", "blank_as_missing"),
    "card_html": ("._card", "card_html"),
    "card_markdown": ("._card", "card_markdown"),
    "check": ("._versions", "check"),
    "check_drift": ("._steps", "check_drift"),
    "check_upload": ("._uploads", "check_upload"),
    "column_chart": ("._column_charts", "column_chart"),
    "csv": ("._sources", "csv"),
    "datasets": ("._catalog", "datasets"),
    "diff": ("._diff", "diff"),
    "drift": ("._drift", "drift"),
    "duckdb": ("._sources", "duckdb"),
    "duckdb_cursor": ("._database", "duckdb_cursor"),
    "entity_key": ("._entities", "entity_key"),
    "entity_key_sql": ("._entities", "entity_key_sql"),
    "entity_keys": ("._entities", "entity_keys"),
    "figure_html": ("._document", "figure_html"),
    "format_bytes": ("._document", "format_bytes"),
    "format_count": ("._document", "format_count"),
    "format_epoch": ("._time", "format_epoch"),
    "format_number": ("._document", "format_number"),
    "format_value": ("._document", "format_value"),
    "format_when": ("._document", "format_when"),
    "from_epoch": ("._time", "from_epoch"),
    "from_uri": ("._sources", "from_uri"),
    "infer_schema": ("._schema", "infer_schema"),
    "ingest": ("._versions", "ingest"),
    "ingest_dataset": ("._steps", "ingest_dataset"),
    "ingest_upload": ("._steps", "ingest_upload"),
    "ingest_upload_pipeline": ("._steps", "ingest_upload_pipeline"),
    "is_time_arrow_type": ("._time", "is_time_arrow_type"),
    "is_time_dtype": ("._time", "is_time_dtype"),
    "is_time_sql_type": ("._time", "is_time_sql_type"),
    "load": ("._versions", "load"),
    "load_dataset": ("._steps", "load_dataset"),
    "parquet": ("._sources", "parquet"),
    "parse_time": ("._time", "parse_time"),
    "profile_table": ("._profile", "profile_table"),
    "prune": ("._retention", "prune"),
    "quote_identifier": ("._profile", "quote"),
    "recorded_splits": ("._version_splits", "recorded_splits"),
    "refused_counts": ("._catalog", "refused_counts"),
    "render_html": ("._document", "render_html"),
    "render_markdown": ("._document", "render_markdown"),
    "run_checks": ("._checks", "run_checks"),
    "source_text": ("._sources", "source_text"),
    "split": ("._splits", None),
    "split_dataset": ("._steps", "split_dataset"),
    "split_version": ("._version_splits", "split_version"),
    "sql": ("._sources", "sql"),
    "start_ingest": ("._uploads", "start_ingest"),
    "style_figure": ("._document", "style_figure"),
    "upload_format": ("._uploads", "upload_format"),
    "top_values": ("._column_charts", "top_values"),
    "utc_times": ("._time", "utc_times"),
    "validate": ("._validation", "validate"),
    "version_detail": ("._catalog", "version_detail"),
    "models_drawn_from": ("._catalog", "models_drawn_from"),
    "versions": ("._catalog", "versions"),
}

__all__ = [
    "BAR_COLOR",
    "DASH",
    "OBSERVED_LIMITS_NOTE",
    "UPLOAD_FORMATS",
    "URI_FORMS",
    "Code",
    "ColumnChart",
    "ColumnDrift",
    "ColumnProfile",
    "ColumnSchema",
    "CorrelationRule",
    "DType",
    "DataTests",
    "DatasetDiff",
    "DatasetVersion",
    "DriftReport",
    "DriftThresholds",
    "Failure",
    "IngestStarted",
    "LabelRule",
    "MissingRule",
    "ModeRule",
    "OutlierRule",
    "Overlap",
    "Profile",
    "Pruned",
    "Role",
    "Schema",
    "SchemaChange",
    "Section",
    "Source",
    "Split",
    "Table",
    "UniqueRule",
    "UploadSource",
    "ValidationReport",
    "VersionDetail",
    "VersionLineage",
    "VersionSplit",
    "allowed_values",
    "as_utc",
    "attempts",
    "blank_as_missing",
    "card_html",
    "card_markdown",
    "check",
    "check_drift",
    "check_upload",
    "column_chart",
    "csv",
    "datasets",
    "diff",
    "drift",
    "duckdb",
    "duckdb_cursor",
    "entity_key",
    "entity_key_sql",
    "entity_keys",
    "figure_html",
    "format_bytes",
    "format_count",
    "format_epoch",
    "format_number",
    "format_value",
    "format_when",
    "from_epoch",
    "from_uri",
    "infer_schema",
    "ingest",
    "ingest_dataset",
    "ingest_upload",
    "ingest_upload_pipeline",
    "is_time_arrow_type",
    "is_time_dtype",
    "is_time_sql_type",
    "load",
    "load_dataset",
    "models_drawn_from",
    "parquet",
    "parse_time",
    "profile_table",
    "prune",
    "quote_identifier",
    "recorded_splits",
    "refused_counts",
    "render_html",
    "render_markdown",
    "run_checks",
    "source_text",
    "split",
    "split_dataset",
    "split_version",
    "sql",
    "start_ingest",
    "style_figure",
    "top_values",
    "upload_format",
    "utc_times",
    "validate",
    "version_detail",
    "versions",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())

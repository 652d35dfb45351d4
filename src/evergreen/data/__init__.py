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

``card_markdown`` and ``card_html`` write a version's data card. The card renderer beneath them is
shared with other cards (the registry's model cards): build ``Section`` objects of facts, ``Table``
objects and notes, then ``render_markdown`` or ``render_html`` (self-contained, every string escaped).
"""

from . import _splits as split
from ._card import card_html, card_markdown
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
from ._steps import check_drift, ingest_dataset, load_dataset, split_dataset
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
from ._validation import OBSERVED_LIMITS_NOTE, Failure, ValidationReport, validate
from ._version_splits import VersionSplit, recorded_splits, split_version
from ._versions import DatasetVersion, check, ingest, load

__all__ = [
    "BAR_COLOR",
    "DASH",
    "OBSERVED_LIMITS_NOTE",
    "URI_FORMS",
    "Code",
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
    "ValidationReport",
    "VersionSplit",
    "as_utc",
    "blank_as_missing",
    "card_html",
    "card_markdown",
    "check",
    "check_drift",
    "csv",
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
    "is_time_arrow_type",
    "is_time_dtype",
    "is_time_sql_type",
    "load",
    "load_dataset",
    "parquet",
    "parse_time",
    "profile_table",
    "prune",
    "quote_identifier",
    "recorded_splits",
    "render_html",
    "render_markdown",
    "run_checks",
    "source_text",
    "split",
    "split_dataset",
    "split_version",
    "sql",
    "style_figure",
    "utc_times",
    "validate",
]

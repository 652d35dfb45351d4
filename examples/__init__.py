"""Example pipelines, shipped inside the package as ``evergreen.examples`` (see docs/guides/pipelines.md)."""

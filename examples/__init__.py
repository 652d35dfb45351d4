"""Example pipelines, shipped inside the package as ``evergreen.examples`` (see the README)."""

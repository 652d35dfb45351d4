"""Data: sources, dataset versions, schemas and validation, data tests, profiles, drift, splits, cards."""

__all__: list[str] = []

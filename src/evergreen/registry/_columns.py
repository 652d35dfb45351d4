"""Registration's column check: a model's inputs against the schema of the dataset version it is
registered as trained on, so that a mismatch is named when the model is registered, not when it serves.

The model's inputs are its signature's columns (name and dtype). Against one dataset version they must
hold three rules:

- every input is a column of the dataset, or a feature of a feature view the model is registered with;
- every feature column of the dataset (role ``feature``) is an input; a column the model leaves out on
  purpose gets another role in the dataset's schema (``role: ignore``). A date-time column is no inferred
  input (training leaves it out, see :func:`evergreen.training.features_of`), so it is not expected;
- an input has the dataset column's dtype; an ``int`` column may feed a ``float`` input.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any

from evergreen.data import ColumnSchema, Schema
from evergreen.errors import RegistryError
from evergreen.store import DatasetVersionInfo

#: (dataset dtype, model dtype) pairs that are not a mismatch besides equal dtypes.
_WIDENINGS = frozenset({("int", "float")})


def check_columns(
    model: str,
    inputs: Sequence[ColumnSchema],
    dataset: DatasetVersionInfo,
    *,
    view_features: Set[str] | None = frozenset(),
) -> None:
    """Refuse a model whose inputs do not match ``dataset``'s schema (the rules are in the module docstring).

    ``view_features`` are the columns the model's feature views provide; None when a view does not list
    its features, and then an input outside the dataset is not refused.

    Raises:
        RegistryError: naming each missing, unused and differently typed column, and the remedy.
    """
    schema = Schema.model_validate(dataset.schema)
    columns = {c.name: c for c in schema.columns}
    taken = {c.name for c in inputs}
    problems: list[str] = []
    unknown = [c.name for c in inputs if c.name not in columns]
    if view_features is not None:
        unknown = [name for name in unknown if name not in view_features]
        if unknown:
            owners = (
                f"neither {dataset.ref} nor its feature views have" if view_features else f"{dataset.ref} does not have"
            )
            problems.append(f"it takes {unknown}, which {owners}")
    unused = [c.name for c in schema.columns if c.role == "feature" and c.dtype != "datetime" and c.name not in taken]
    if unused:
        problems.append(
            f"{dataset.ref}'s feature columns {unused} are not among its inputs (give them role: ignore in the "
            "dataset's schema if the model leaves them out on purpose)"
        )
    differ = [
        f"{c.name!r} is {c.dtype} in the model and {columns[c.name].dtype} in the dataset"
        for c in inputs
        if c.name in columns and not _fits(columns[c.name].dtype, c.dtype)
    ]
    if differ:
        problems.append("; ".join(differ))
    if problems:
        raise RegistryError(
            f"model {model!r} was not trained on the columns of {dataset.ref}: {'; '.join(problems)}. Register "
            f"it with the dataset version it was trained on (datasets=[...]), or retrain it on {dataset.ref}"
        )


def _fits(dataset_dtype: Any, model_dtype: Any) -> bool:
    return bool(dataset_dtype == model_dtype or (dataset_dtype, model_dtype) in _WIDENINGS)

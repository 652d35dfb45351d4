"""The roles a System declares (target, timestamp, entity) held over the schema its data carries.

A schema inferred by a bare first ingestion (``evergreen data ingest NAME FILE``, no ``--timestamp``) calls
every column a feature, so the event time and the entity key would become model inputs. The System's
declaration says what those columns are, so its training window takes the declared roles: a column the
schema calls a ``feature`` takes the role the System gives it. A schema that gives such a column another
role (or gives the role to another column) contradicts the declaration, and that is refused, naming both.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from evergreen.data import ColumnSchema, Schema
from evergreen.errors import SystemDefinitionError


def with_system_roles(
    schema: Schema, *, dataset: str, target: str | None = None, timestamp: str | None = None, entity: str | None = None
) -> Schema:
    """``schema`` with the System's ``target``, ``timestamp`` and ``entity`` columns in those roles.

    A declared column the schema calls a ``feature`` takes the declared role (an entity key loses the range
    and categories a sample gave it: new keys are expected); one already in that role is kept as it is.
    Columns the System does not name keep their roles (an ``id`` column stays the row id).

    Raises:
        SystemDefinitionError: a declared column is missing from the schema, holds another role there, or
            the schema gives the declared role to another column; or the timestamp column is not a datetime.
    """
    declared = {name: role for role, name in (("target", target), ("timestamp", timestamp), ("entity", entity)) if name}
    names = schema.names
    missing = [f"{role} {name!r}" for name, role in declared.items() if name not in names]
    if missing:
        raise SystemDefinitionError(
            f"the System declares {', '.join(missing)}, but dataset {dataset!r} has no such column (its columns: "
            f"{', '.join(names)}); fix the System's declaration in project.py or ingest data that has the column"
        )
    columns: list[ColumnSchema] = []
    for column in schema.columns:
        role = declared.get(column.name)
        if role is None:
            if column.role in declared.values():
                owner = next(name for name, given in declared.items() if given == column.role)
                raise SystemDefinitionError(_contradiction(dataset, column.name, column.role, owner, role=column.role))
            columns.append(column)
        elif column.role == role:
            columns.append(column)
        elif column.role != "feature":
            raise SystemDefinitionError(_contradiction(dataset, column.name, column.role, column.name, role=role))
        else:
            columns.append(_in_role(column, role, dataset))
    return Schema(columns=columns)


def _contradiction(dataset: str, column: str, held: str, owner: str, *, role: str) -> str:
    if column == owner:
        return (
            f"column {column!r} of dataset {dataset!r} has role {held!r} in its schema, but the System declares it "
            f"the {role}; make them agree: set `role: {role}` for {column!r} in the schema YAML (evergreen data "
            f"schema {dataset} -o schema.yaml, edit it, then ingest with --schema schema.yaml), or change the "
            f"System's {role}= in project.py"
        )
    return (
        f"column {column!r} of dataset {dataset!r} has role {held!r} in its schema, but the System declares "
        f"{owner!r} the {role}; make them agree: set `role: {role}` for {owner!r} (and another role for "
        f"{column!r}) in the schema YAML (evergreen data schema {dataset} -o schema.yaml, then ingest with "
        f"--schema schema.yaml), or change the System's {role}= to {column!r} in project.py"
    )


def _in_role(column: ColumnSchema, role: str, dataset: str) -> ColumnSchema:
    """``column`` (a feature) in the declared ``role``."""
    fields: dict[str, Any] = {**column.model_dump(), "role": role}
    if role == "entity":  # keys are not values: new ones are expected, whatever one sample held
        fields.update(min=None, max=None, categories=None)
        if column.dtype == "category":
            fields["dtype"] = "string"
    try:
        return ColumnSchema.model_validate(fields)
    except ValidationError as e:
        raise SystemDefinitionError(
            f"column {column.name!r} of dataset {dataset!r} is the System's {role}, but its schema gives it dtype "
            f"{column.dtype!r}; a {role} column must hold date-times (e.g. 2024-05-01 00:43:11+00:00): fix the "
            f"column's values or `dtype: datetime` in the schema YAML, or declare another {role}= in project.py"
        ) from e

"""Every table at once: the declarative base with the whole schema in its metadata (Alembic compares it)."""

from __future__ import annotations

from . import _datasets, _deployments, _experiments, _features, _models, _monitoring, _predictions, _runs, _tokens
from ._base import Base

__all__ = ["Base"]
#: The areas whose tables this module loads into ``Base.metadata``.
AREAS = (_datasets, _deployments, _experiments, _features, _models, _monitoring, _predictions, _runs, _tokens)

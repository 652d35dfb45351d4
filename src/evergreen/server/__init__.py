"""The control plane's REST API, ``/api/v1``, and its web UI at ``/`` (:mod:`evergreen.server.ui`): thin layers over
the capabilities' functions.

Conventions every resource module (``_<domain>.py``, one ``router`` each, registered in ``_app.py``) keeps:

- A route parses its input, calls capability functions (which open the store through
  :func:`evergreen.workspace.open_workspace`) and answers pydantic models; policy stays in capabilities.
- Lists take ``limit`` and ``cursor`` (:class:`PageQuery`) and answer :class:`Page` (``items``,
  ``next_cursor``); cursors are opaque (:func:`encode_cursor` / :func:`decode_cursor`) and pages are keyset
  reads, so a page costs the same on a store of any size.
- Errors are RFC 9457 ``application/problem+json``: Evergreen's own errors are mapped by type
  (``_problems.py``), and a route raises :class:`Problem` for what only HTTP knows.
- Each route depends on a scope (:class:`require`; :func:`route_scopes` lists them): ``read`` for reads,
  ``operate`` for changes, ``admin`` for tokens; :func:`actor` names who asked, for audit trails.
- Custom verbs follow the prediction API's ``:predict`` style (``/models/churn/versions/3:promote``).

The response models are public too (a route module's ``VersionItem`` is ``ModelVersion`` here, its
``VersionSummary`` ``DatasetVersion``, as one name per resource): :mod:`evergreen.client` returns them.
"""

from __future__ import annotations

from evergreen.serving import SkewReport  # the answer of GET /skew-reports/{deployment}, serving's own model

from ._app import PREFIX, WORKER_FACTORY, create_api, mount_api, route_scopes
from ._data import AttemptItem as IngestAttempt
from ._data import DatasetItem, IngestAccepted
from ._data import DiffOut as DatasetDiff
from ._data import Report as ValidationReport
from ._data import VersionDetailOut as DatasetVersionDetail
from ._data import VersionSummary as DatasetVersion
from ._deployments import DeploymentDetail, DeploymentItem, FeedbackAnswer, Label
from ._deployments import Prediction as LoggedPrediction
from ._deployments import Revision as DeploymentRevision
from ._experiments import Comparison, ExperimentItem, TrialDetail, TrialItem
from ._features import Materialization
from ._features import ViewDetail as FeatureViewDetail
from ._features import ViewItem as FeatureViewItem
from ._health import Health
from ._models import EventItem as ModelEvent
from ._models import ModelDetail, ModelItem, Release
from ._models import UseItem as ModelUse
from ._models import VersionDetail as ModelVersionDetail
from ._models import VersionItem as ModelVersion
from ._monitoring import Alert, AlertDetail, MonitorResult
from ._pages import Page, PageQuery, decode_cursor, encode_cursor, page_of
from ._problems import Problem
from ._runs import Artifact as RunArtifact
from ._runs import CancelAnswer, PipelineItem, RunItem, RunShown, RunStarted, ScheduleItem, Triggered
from ._runs import Firing as ScheduleFiring
from ._security import actor, require, settings_of, workspace_of
from ._system import SystemsStatus
from ._tokens import IssuedToken, Token
from .ui import create_ui, mount_ui

__all__ = [
    "PREFIX",
    "WORKER_FACTORY",
    "Alert",
    "AlertDetail",
    "CancelAnswer",
    "Comparison",
    "DatasetDiff",
    "DatasetItem",
    "DatasetVersion",
    "DatasetVersionDetail",
    "DeploymentDetail",
    "DeploymentItem",
    "DeploymentRevision",
    "ExperimentItem",
    "FeatureViewDetail",
    "FeatureViewItem",
    "FeedbackAnswer",
    "Health",
    "IngestAccepted",
    "IngestAttempt",
    "IssuedToken",
    "Label",
    "LoggedPrediction",
    "Materialization",
    "ModelDetail",
    "ModelEvent",
    "ModelItem",
    "ModelUse",
    "ModelVersion",
    "ModelVersionDetail",
    "MonitorResult",
    "Page",
    "PageQuery",
    "PipelineItem",
    "Problem",
    "Release",
    "RunArtifact",
    "RunItem",
    "RunShown",
    "RunStarted",
    "ScheduleFiring",
    "ScheduleItem",
    "SkewReport",
    "SystemsStatus",
    "Token",
    "TrialDetail",
    "TrialItem",
    "Triggered",
    "ValidationReport",
    "actor",
    "create_api",
    "create_ui",
    "decode_cursor",
    "encode_cursor",
    "mount_api",
    "mount_ui",
    "page_of",
    "require",
    "route_scopes",
    "settings_of",
    "workspace_of",
]

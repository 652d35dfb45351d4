"""One namespace per API resource: each method is one route, answering the server's own response models;
lists are iterators that fetch the next page only when the previous one is used up."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from evergreen import server as api
from evergreen.errors import ApiError
from evergreen.refs import Ref

if TYPE_CHECKING:
    from ._http import Client

M = TypeVar("M", bound=BaseModel)

#: Bytes read from an uploaded file at a time: the file is streamed, never held whole in memory.
CHUNK = 1 << 20
#: The Content-Type of an upload by its file's suffix (the server reads the format from it).
PARQUET = "application/vnd.apache.parquet"
UPLOAD_TYPES = {".csv": "text/csv", ".parquet": PARQUET, ".pq": PARQUET}


def _part(value: str | int) -> str:
    """One path segment: a name as typed (``a/b``, spaces) reaches the route whole."""
    return quote(str(value), safe="")


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _etag(revision: int | None) -> dict[str, str] | None:
    """``If-Match`` for a change that must apply to the revision the caller read (else a 409)."""
    return None if revision is None else {"If-Match": f'"{revision}"'}


class _Resource:
    """What every namespace shares: its client and the typed forms of ``get``, ``post`` and ``items``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _get(self, model: type[M], path: str, /, **params: Any) -> M:
        return model.model_validate(self._client.get(path, **params))

    def _post(self, model: type[M], path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> M:
        return model.model_validate(self._client.post(path, body, headers=headers))

    def _items(self, model: type[M], path: str, /, **params: Any) -> Iterator[M]:
        return (model.model_validate(item) for item in self._client.items(path, **params))


class System(_Resource):
    """``/system``."""

    def status(self) -> api.SystemsStatus:
        """Each System's live versions, last tick, next scheduled run and open alerts."""
        return self._get(api.SystemsStatus, "/system/status")


class Datasets(_Resource):
    """``/datasets``: versions, validation reports, diffs, and uploads of CSV or Parquet files."""

    def list(self, *, prefix: str | None = None, descending: bool = False) -> Iterator[api.DatasetItem]:
        """Every dataset by name (``prefix``: only names starting with it), with its latest version."""
        return self._items(api.DatasetItem, "/datasets", prefix=prefix, sort="-name" if descending else "name")

    def versions(self, name: str, *, oldest_first: bool = False) -> Iterator[api.DatasetVersion]:
        """The dataset's versions, newest first (or oldest)."""
        sort = "number" if oldest_first else "-number"
        return self._items(api.DatasetVersion, f"/datasets/{_part(name)}/versions", sort=sort)

    def version(self, ref: str) -> api.DatasetVersionDetail:
        """One version in full (``transactions@3``, a content-id prefix after the ``@``, or just the name for
        the latest): schema, profile, validation report, splits and lineage."""
        parsed = Ref.parse(ref, what="dataset reference", example="transactions@3")
        path = f"/datasets/{_part(parsed.name)}/versions/{_part(parsed.selector or 'latest')}"
        return self._get(api.DatasetVersionDetail, path)

    def attempts(self, name: str, *, refused: bool | None = None) -> Iterator[api.IngestAttempt]:
        """The dataset's ingestion attempts, newest first (``refused``: only those refused, or only passed)."""
        return self._items(api.IngestAttempt, f"/datasets/{_part(name)}/attempts", refused=refused)

    def diff(self, name: str, a: str, b: str, *, id_column: str | None = None) -> api.DatasetDiff:
        """What changed from version ``a`` to ``b`` (numbers, content-id prefixes or ``latest``)."""
        return self._get(api.DatasetDiff, f"/datasets/{_part(name)}/diff", a=a, b=b, id_column=id_column)

    def validate(
        self, name: str, file: str | Path, *, format: Literal["csv", "parquet"] | None = None, tests: str | None = None
    ) -> api.ValidationReport:
        """A dry run: ``file`` checked against the dataset's schema and the data tests ``tests`` names (a YAML
        file relative to the server's project folder); nothing is recorded. ``ok`` false when a check blocks."""
        path = Path(file)
        response = self._client.request(
            "POST",
            f"/datasets/{_part(name)}:validate",
            params={"format": format, "filename": path.name, "tests": tests},
            content=_chunks(path),
            headers={"Content-Type": UPLOAD_TYPES.get(path.suffix.lower(), "application/octet-stream")},
        )
        return api.ValidationReport.model_validate(response.json())

    def ingest(
        self,
        name: str,
        file: str | Path,
        *,
        format: Literal["csv", "parquet"] | None = None,
        tests: str | None = None,
        target: str | None = None,
        timestamp: str | None = None,
        entity: str | None = None,
        id: str | None = None,
    ) -> api.IngestAccepted:
        """Upload ``file`` as the dataset's next version: checked first (a blocking failure raises
        :class:`~evergreen.errors.ApiError`, status 422, nothing recorded), then ingested by a run in the
        server, whose id the answer holds (follow it with ``client.runs.get``). ``target``, ``timestamp``,
        ``entity`` and ``id`` name the roles of a new dataset's columns."""
        path = Path(file)
        params = {"format": format, "filename": path.name, "tests": tests}
        params |= {"target": target, "timestamp": timestamp, "entity": entity, "id": id}
        response = self._client.request(
            "POST",
            f"/datasets/{_part(name)}:ingest",
            params=params,
            content=_chunks(path),
            headers={"Content-Type": UPLOAD_TYPES.get(path.suffix.lower(), "application/octet-stream")},
        )
        return api.IngestAccepted.model_validate(response.json())

    def card(self, ref: str, *, format: Literal["md", "html"] = "md") -> str:
        """The version's data card, as Markdown or a self-contained HTML page."""
        parsed = Ref.parse(ref, what="dataset reference", example="transactions@3")
        path = f"/datasets/{_part(parsed.name)}/versions/{_part(parsed.selector or 'latest')}/card"
        return self._client.request("GET", path, params={"format": format}).text


def _chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes a chunk at a time; a missing file is named before anything is sent."""
    if not path.is_file():
        raise ApiError(f"no file {path} to upload; give the path of a CSV or Parquet file")

    def read() -> Iterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    return read()


class FeatureViews(_Resource):
    """``/feature-views``."""

    def list(self) -> Iterator[api.FeatureViewItem]:
        """Every feature view by name: its latest version, last materialization and users."""
        return self._items(api.FeatureViewItem, "/feature-views")

    def get(self, ref: str) -> api.FeatureViewDetail:
        """A view's version in full (``spend`` for the newest, ``spend@2``), with its versions, newest
        materializations, the model versions using it and the deployments serving it."""
        parsed = Ref.parse(ref, what="feature view reference", example="spend@2")
        if parsed.selector is None:
            return self._get(api.FeatureViewDetail, f"/feature-views/{_part(parsed.name)}")
        path = f"/feature-views/{_part(parsed.name)}/versions/{_part(parsed.selector)}"
        return self._get(api.FeatureViewDetail, path)

    def materializations(self, ref: str) -> Iterator[api.Materialization]:
        """A view version's materializations (``spend``: the newest version's), newest first."""
        parsed = Ref.parse(ref, what="feature view reference", example="spend@2")
        path = f"/feature-views/{_part(parsed.name)}/versions/{_part(parsed.selector or 'latest')}/materializations"
        return self._items(api.Materialization, path)

    def skew(
        self, deployment: str, *, hours: float = 24.0, until: datetime | None = None, limit: int = 10_000
    ) -> api.SkewReport:
        """The feature values ``deployment`` served in the ``hours`` before ``until`` (default now) compared with
        the offline values for the same entity and time, per feature."""
        path = f"/skew-reports/{_part(deployment)}"
        return self._get(api.SkewReport, path, hours=hours, until=_time(until), limit=limit)


class Pipelines(_Resource):
    """``/pipelines``."""

    def list(self, *, internal: bool = False) -> Iterator[api.PipelineItem]:
        """The pipelines the server's project can start, with their parameters and steps; ``internal`` also those
        Evergreen starts for itself (``ingest-upload``, ``reproduce-trial``)."""
        return self._items(api.PipelineItem, "/pipelines", internal=internal)

    def get(self, name: str) -> api.PipelineItem:
        """One pipeline's parameters (name, type, default) and steps."""
        return self._get(api.PipelineItem, f"/pipelines/{_part(name)}")


class Runs(_Resource):
    """``/runs``, and ``/pipelines/{name}/runs`` to start one."""

    def list(
        self,
        *,
        pipeline: str | None = None,
        status: Literal["running", "cancelling", "succeeded", "failed", "cancelled"] | None = None,
        since: datetime | None = None,
        oldest_first: bool = False,
    ) -> Iterator[api.RunItem]:
        """Runs newest first (or oldest), only those matching the filters given."""
        sort = "created" if oldest_first else "-created"
        return self._items(api.RunItem, "/runs", pipeline=pipeline, status=status, since=_time(since), sort=sort)

    def get(self, run_id: str, *, previews: bool = True) -> api.RunShown:
        """One run (its id or a unique prefix of 4+ characters): steps, artifacts, logs, DAG, what it made."""
        return self._get(api.RunShown, f"/runs/{_part(run_id)}", previews=previews)

    def start(self, pipeline: str, params: dict[str, Any] | None = None, *, cache: bool = True) -> api.RunStarted:
        """Start a run of ``pipeline`` in the server; a bad parameter raises ``ParameterError`` before anything
        runs. The run goes on after the answer: follow it with :meth:`get`."""
        body = {"params": params or {}, "cache": cache}
        return self._post(api.RunStarted, f"/pipelines/{_part(pipeline)}/runs", body)

    def cancel(self, run_id: str, *, reason: str = "") -> api.CancelAnswer:
        """Stop a running run (a run that had ended raises ``ApiError`` with status 409)."""
        return self._post(api.CancelAnswer, f"/runs/{_part(run_id)}:cancel", {"reason": reason})


class Schedules(_Resource):
    """``/schedules``."""

    def list(self, *, at: datetime | None = None) -> Iterator[api.ScheduleItem]:
        """Stored schedules by name, with their next due time (as of ``at``, default now) and last firing."""
        return self._items(api.ScheduleItem, "/schedules", at=_time(at))

    def trigger(self, name: str) -> api.Triggered:
        """Start the schedule's pipeline now; its cron firings are left as they are."""
        return self._post(api.Triggered, f"/schedules/{_part(name)}:trigger")


class Experiments(_Resource):
    """``/experiments`` and ``/trials``."""

    def list(self) -> Iterator[api.ExperimentItem]:
        """Experiments by name."""
        return self._items(api.ExperimentItem, "/experiments")

    def trials(
        self, experiment: str | None = None, *, where: Sequence[str] = (), sort: str | None = None
    ) -> Iterator[api.TrialItem]:
        """Trials newest first, or by ``sort`` (``"-roc_auc"``), meeting every ``where`` (``"roc_auc > 0.8"``)."""
        return self._items(api.TrialItem, "/trials", experiment=experiment, where=list(where) or None, sort=sort)

    def trial(self, trial_id: str) -> api.TrialDetail:
        """One trial with its metric series, code, data and environment."""
        return self._get(api.TrialDetail, f"/trials/{_part(trial_id)}")

    def download_artifact(self, experiment: str, trial_id: str, name: str, destination: str | Path) -> Path:
        """Save the trial's artifact ``name`` into the folder ``destination``: a file or figure under its own name,
        a value in its stored format (``recipe.json``), a folder as ``NAME.tar``; the path written."""
        path = f"/experiments/{_part(experiment)}/trials/{_part(trial_id)}/artifacts/{_part(name)}"
        return self._client.download(path, Path(destination))

    def compare(self, trial_ids: Sequence[str]) -> api.Comparison:
        """Two or more trials side by side: the parameters that differ and every final metric."""
        return self._get(api.Comparison, "/trials:compare", ids=list(trial_ids))


class Models(_Resource):
    """``/models``: the registry. A version is named as everywhere else: ``churn@3`` or ``churn@production``."""

    def list(self) -> Iterator[api.ModelItem]:
        """Registered models by name, with their number of versions and aliases."""
        return self._items(api.ModelItem, "/models")

    def get(self, name: str) -> api.ModelDetail:
        """One model: versions count, aliases, and its revision (pass it as ``expected_revision``)."""
        return self._get(api.ModelDetail, f"/models/{_part(name)}")

    def versions(
        self, name: str, *, status: str | None = None, oldest_first: bool = False
    ) -> Iterator[api.ModelVersion]:
        """The model's versions, newest first (or oldest), only those in ``status`` when given."""
        order = "oldest" if oldest_first else "newest"
        return self._items(api.ModelVersion, f"/models/{_part(name)}/versions", status=status, order=order)

    def version(self, ref: str) -> api.ModelVersionDetail:
        """One version: metrics, gate report, the deployments using it, lineage and audit trail."""
        return self._get(api.ModelVersionDetail, _version_path(ref))

    def events(self, name: str, *, version: int | None = None) -> Iterator[api.ModelEvent]:
        """The model's audit trail, newest first (``version``: only that version's)."""
        return self._items(api.ModelEvent, f"/models/{_part(name)}/events", version=version)

    def promote(
        self,
        ref: str,
        *,
        reason: str,
        alias: str = "production",
        require_approval: bool = False,
        expected_revision: int | None = None,
    ) -> api.Release:
        """Point ``alias`` at the version (``production`` releases it; deployments following the alias move with
        it). With ``expected_revision`` (a revision read before) it is refused if the model changed since."""
        body = {"reason": reason, "alias": alias, "require_approval": require_approval}
        return self._post(api.Release, f"{_version_path(ref)}:promote", body, headers=_etag(expected_revision))

    def approve(self, ref: str, *, reason: str, expected_revision: int | None = None) -> api.ModelVersion:
        """A person's approval of a validated version, kept in the audit trail."""
        return self._post(
            api.ModelVersion, f"{_version_path(ref)}:approve", {"reason": reason}, headers=_etag(expected_revision)
        )

    def rollback(self, name: str, *, reason: str, expected_revision: int | None = None) -> api.Release:
        """Put the previous production version back."""
        path = f"/models/{_part(name)}:rollback"
        return self._post(api.Release, path, {"reason": reason}, headers=_etag(expected_revision))

    def card(self, ref: str, *, format: Literal["markdown", "html"] = "markdown") -> str:
        """The version's model card."""
        return self._client.request("GET", f"{_version_path(ref)}/card", params={"format": format}).text


def _version_path(ref: str) -> str:
    parsed = Ref.parse(ref, what="model version reference", example="churn@3")
    if parsed.selector is None:
        raise ApiError(f"{ref!r} names no version; give MODEL@VERSION or MODEL@ALIAS, e.g. churn@3")
    return f"/models/{_part(parsed.name)}/versions/{_part(parsed.selector)}"


class Deployments(_Resource):
    """``/deployments``: policies, revisions, releases, the prediction log and feedback."""

    def list(self, *, model: str | None = None) -> Iterator[api.DeploymentItem]:
        """Deployments by name (``model``: only that model's)."""
        return self._items(api.DeploymentItem, "/deployments", model=model)

    def get(self, name: str) -> api.DeploymentDetail:
        """One deployment with its current policy and revision."""
        return self._get(api.DeploymentDetail, f"/deployments/{_part(name)}")

    def revisions(self, name: str) -> Iterator[api.DeploymentRevision]:
        """The policies the deployment had, newest first."""
        return self._items(api.DeploymentRevision, f"/deployments/{_part(name)}/revisions")

    def deploy(
        self,
        name: str,
        ref: str,
        *,
        reason: str,
        strategy: Literal["direct", "blue-green", "canary", "shadow", "bandit"] = "direct",
        expected_revision: int | None = None,
        **options: Any,
    ) -> api.DeploymentDetail:
        """Release ``ref`` (``churn@3`` pins the deployment; ``churn@production`` follows the alias) by a
        strategy; ``options`` are the route's other fields (``steps``, ``every_s``, ``guardrails``,
        ``versions``, ``features``, ``strict_ranges``, ``missing_entities``, ``postprocess``)."""
        parsed = Ref.parse(ref, what="model reference", example="churn@3")
        if parsed.selector is None:
            raise ApiError(f"{ref!r} names no version; give MODEL@VERSION or MODEL@ALIAS, e.g. churn@3")
        version: int | str = parsed.number if parsed.number is not None else parsed.selector
        body = {"model": parsed.name, "version": version, "strategy": strategy, "reason": reason, **options}
        path = f"/deployments/{_part(name)}:deploy"
        return self._post(api.DeploymentDetail, path, body, headers=_etag(expected_revision))

    def rollback(self, name: str, *, reason: str, expected_revision: int | None = None) -> api.DeploymentDetail:
        """Restore the policy the deployment had before its latest change."""
        path = f"/deployments/{_part(name)}:rollback"
        return self._post(api.DeploymentDetail, path, {"reason": reason}, headers=_etag(expected_revision))

    def predictions(
        self,
        name: str,
        *,
        version: int | None = None,
        entity_id: str | None = None,
        mode: Literal["live", "shadow", "error"] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[api.LoggedPrediction]:
        """The deployment's logged predictions, newest first, filtered."""
        query = {"version": version, "entity_id": entity_id, "mode": mode, "since": _time(since), "until": _time(until)}
        return self._items(api.LoggedPrediction, f"/deployments/{_part(name)}/predictions", **query)

    def feedback(self, name: str, labels: Iterable[api.Label | dict[str, Any]]) -> api.FeedbackAnswer:
        """Record labels for the deployment's predictions (by ``prediction_id``, or ``entity_id`` and
        ``event_time``). Labels refused (no such prediction, not one of the model's classes) are listed in the
        answer's ``refused`` by position; the others are recorded."""
        items = [api.Label.model_validate(label).model_dump(mode="json", exclude_none=True) for label in labels]
        try:
            return self._post(api.FeedbackAnswer, f"/deployments/{_part(name)}/feedback", {"items": items})
        except ApiError as e:  # 422 with the answer itself: some labels were refused, the others recorded
            if e.status == 422 and "accepted" in e.problem:
                return api.FeedbackAnswer.model_validate(e.problem)
            raise


class Monitors(_Resource):
    """``/monitors``."""

    def list(self, *, deployment: str | None = None) -> Iterator[api.MonitorResult]:
        """Each monitor's newest judged window, by deployment and monitor."""
        return self._items(api.MonitorResult, "/monitors", deployment=deployment)

    def results(
        self, deployment: str, monitor: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[api.MonitorResult]:
        """One monitor's series, newest window first."""
        path = f"/deployments/{_part(deployment)}/monitors/{_part(monitor)}/results"
        return self._items(api.MonitorResult, path, since=_time(since), until=_time(until))


class Alerts(_Resource):
    """``/alerts``."""

    def list(
        self,
        *,
        states: Sequence[Literal["open", "acknowledged", "resolved"]] = (),
        deployment: str | None = None,
        severity: Literal["info", "warning", "critical"] | None = None,
        kind: Literal["monitor", "gate"] | None = None,
    ) -> Iterator[api.Alert]:
        """Alerts, latest change first (default: open and acknowledged ones)."""
        query = {"state": list(states) or None, "deployment": deployment, "severity": severity, "kind": kind}
        return self._items(api.Alert, "/alerts", **query)

    def get(self, alert_id: int) -> api.AlertDetail:
        """One alert with its history."""
        return self._get(api.AlertDetail, f"/alerts/{int(alert_id)}")

    def ack(self, alert_id: int, *, note: str = "") -> api.Alert:
        """Acknowledge the alert: someone is on it."""
        return self._post(api.Alert, f"/alerts/{int(alert_id)}:ack", {"note": note})

    def resolve(self, alert_id: int, *, note: str = "") -> api.Alert:
        """Resolve the alert by hand."""
        return self._post(api.Alert, f"/alerts/{int(alert_id)}:resolve", {"note": note})


class Tokens(_Resource):
    """``/tokens`` (admin)."""

    def list(self) -> Iterator[api.Token]:
        """Every token by name, revoked ones too (never the token itself)."""
        return self._items(api.Token, "/tokens")

    def create(self, name: str, scopes: Sequence[str]) -> api.IssuedToken:
        """Make a token; the answer's ``token`` is the only time it is shown."""
        return self._post(api.IssuedToken, "/tokens", {"name": name, "scopes": list(scopes)})

    def revoke(self, name: str) -> api.Token:
        """Make the token unusable; it stays listed."""
        return self._post(api.Token, f"/tokens/{_part(name)}:revoke")

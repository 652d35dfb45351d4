"""Reads and writes of datasets, their versions and their ingestion reports, one session at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from evergreen.errors import NotFoundError, did_you_mean

from ._records import DatasetCheckInfo, DatasetInfo, DatasetSplitInfo, DatasetVersionInfo
from ._runs import HEX_DIGITS, _insert_ignoring_duplicates, hex_prefix, now
from ._schema import DatasetCheckRecord, DatasetRecord, DatasetSplitRecord, DatasetVersionRecord, LineageEdge

#: Kinds of lineage node whose use of a dataset version keeps it from being deleted by retention.
PROTECTING_KINDS = ("model_version", "deployment")


def ensure_dataset(session: Session, name: str) -> int:
    """The id of the dataset called ``name``, recorded on first use."""
    _insert_ignoring_duplicates(session, DatasetRecord, [{"name": name, "created_at": now()}])
    return session.execute(select(DatasetRecord.id).where(DatasetRecord.name == name)).scalar_one()


def _dataset_id(session: Session, name: str) -> int:
    found = session.execute(select(DatasetRecord.id).where(DatasetRecord.name == name)).scalar_one_or_none()
    if found is None:
        names = session.execute(select(DatasetRecord.name)).scalars().all()
        raise NotFoundError(f"no dataset {name!r}{did_you_mean(name, names)}; list datasets with: evergreen data list")
    return found


def add_version(
    session: Session,
    *,
    dataset_id: int,
    content_id: str,
    rows: int,
    size: int,
    source: dict[str, Any],
    schema: dict[str, Any],
    profile: dict[str, Any],
    report: dict[str, Any],
    watermark_column: str | None,
    watermark: str | None,
    parent_id: int | None,
    run_id: str | None,
) -> int:
    """Record a new version, numbered after the dataset's last; returns its id."""
    last = session.execute(
        select(func.max(DatasetVersionRecord.number)).where(DatasetVersionRecord.dataset_id == dataset_id)
    ).scalar_one()
    record = DatasetVersionRecord(
        dataset_id=dataset_id,
        number=(last or 0) + 1,
        content_id=content_id,
        created_at=now(),
        rows=rows,
        size=size,
        source=source,
        schema=schema,
        profile=profile,
        report=report,
        watermark_column=watermark_column,
        watermark=watermark,
        parent_id=parent_id,
        run_id=run_id,
    )
    session.add(record)
    session.flush()
    return record.id


def version_by_content(session: Session, dataset_id: int, content_id: str) -> DatasetVersionInfo | None:
    """The version of this dataset with exactly this content, if one exists."""
    row = session.execute(
        _versions().where(DatasetVersionRecord.dataset_id == dataset_id, DatasetVersionRecord.content_id == content_id)
    ).first()
    return _version_info(*row) if row else None


def get_version(session: Session, name: str, ref: str | int | None = None) -> DatasetVersionInfo:
    """A version by number, by a prefix of its content id, or the latest when ``ref`` is None."""
    dataset_id = _dataset_id(session, name)
    query = _versions().where(DatasetVersionRecord.dataset_id == dataset_id)
    if ref is None or ref == "latest":
        row = session.execute(query.order_by(DatasetVersionRecord.number.desc()).limit(1)).first()
        if row is None:
            raise NotFoundError(f"dataset {name!r} has no version yet; make one with: evergreen data ingest {name} …")
        return _version_info(*row)
    text = str(ref)
    if text.isdecimal():
        row = session.execute(query.where(DatasetVersionRecord.number == int(text))).first()
    elif set(text.lower()) <= HEX_DIGITS:  # content ids are lower-case hex: anything else names no version
        rows = session.execute(query.where(hex_prefix(DatasetVersionRecord.content_id, text.lower())).limit(2)).all()
        if len(rows) > 1:
            raise NotFoundError(f"{name}@{text} matches several versions; give more characters")
        row = rows[0] if rows else None
    else:
        row = None
    if row is None:
        raise NotFoundError(
            f"dataset {name!r} has no version {text!r}; give a version number or a content id prefix "
            f"(see: evergreen data show {name})"
        )
    return _version_info(*row)


def versions_by_id(session: Session, ids: Sequence[int]) -> list[DatasetVersionInfo]:
    """The dataset versions with these record ids (those that still exist), in id order."""
    if not ids:
        return []
    rows = session.execute(_versions().where(DatasetVersionRecord.id.in_(ids)).order_by(DatasetVersionRecord.id))
    return [_version_info(*row) for row in rows.all()]


def list_versions(
    session: Session, name: str, *, after: int | None = None, limit: int | None = None, newest_first: bool = False
) -> list[DatasetVersionInfo]:
    """The versions of a dataset, oldest first (``newest_first``: newest first); a page of ``limit`` of them
    after version number ``after`` in that order (keyset: a page costs the same however many versions exist)."""
    dataset_id = _dataset_id(session, name)
    number = DatasetVersionRecord.number
    query = _versions().where(DatasetVersionRecord.dataset_id == dataset_id)
    if after is not None:
        query = query.where(number < after if newest_first else number > after)
    query = query.order_by(number.desc() if newest_first else number)
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    return [_version_info(*row) for row in rows]


def list_datasets(
    session: Session,
    *,
    after: str | None = None,
    limit: int | None = None,
    descending: bool = False,
    prefix: str | None = None,
) -> list[DatasetInfo]:
    """The datasets by name (``descending``: Z to A; only names starting with ``prefix`` when given), each with
    its number of versions and its latest version; a page of ``limit`` of them after the name ``after`` in that
    order (keyset)."""
    query = select(DatasetRecord)
    if prefix:
        query = query.where(DatasetRecord.name.startswith(prefix, autoescape=True))
    if after is not None:
        query = query.where(DatasetRecord.name < after if descending else DatasetRecord.name > after)
    query = query.order_by(DatasetRecord.name.desc() if descending else DatasetRecord.name)
    datasets = session.execute(query if limit is None else query.limit(limit)).scalars().all()
    # Counted for this page's datasets only, so a page costs the same however many versions the store holds;
    # in chunks, as SQLite refuses an expression deeper than 1,000 (a listing of every dataset).
    counts: dict[int, tuple[int, int]] = {}
    latest: dict[int, DatasetVersionInfo] = {}
    for first in range(0, len(datasets), 200):
        ids = [d.id for d in datasets[first : first + 200]]
        chunk = {
            dataset_id: (versions, last)
            for dataset_id, versions, last in session.execute(
                select(DatasetVersionRecord.dataset_id, func.count(), func.max(DatasetVersionRecord.number))
                .where(DatasetVersionRecord.dataset_id.in_(ids))
                .group_by(DatasetVersionRecord.dataset_id)
            ).all()
        }
        if chunk:
            newest = or_(
                *(
                    and_(DatasetVersionRecord.dataset_id == i, DatasetVersionRecord.number == n)
                    for i, (_, n) in chunk.items()
                )
            )
            latest |= {row[0].dataset_id: _version_info(*row) for row in session.execute(_versions().where(newest))}
        counts |= chunk
    return [DatasetInfo(d.name, d.created_at, counts.get(d.id, (0, None))[0], latest.get(d.id)) for d in datasets]


def record_check(
    session: Session,
    *,
    dataset_id: int,
    ok: bool,
    source: dict[str, Any],
    report: dict[str, Any],
    version_id: int | None,
) -> int:
    """Keep an ingestion attempt's report, whether or not it made a version."""
    record = DatasetCheckRecord(
        dataset_id=dataset_id, created_at=now(), ok=ok, source=source, report=report, version_id=version_id
    )
    session.add(record)
    session.flush()
    return record.id


def list_checks(
    session: Session, name: str, *, limit: int | None = 20, after: int | None = None, ok: bool | None = None
) -> list[DatasetCheckInfo]:
    """The newest ingestion attempts of a dataset first: ``ok`` False keeps the refused ones; a page of
    ``limit`` after the attempt whose id is ``after`` (keyset)."""
    dataset_id = _dataset_id(session, name)
    query = (
        select(DatasetCheckRecord, DatasetVersionRecord.number)
        .outerjoin(DatasetVersionRecord, DatasetVersionRecord.id == DatasetCheckRecord.version_id)
        .where(DatasetCheckRecord.dataset_id == dataset_id)
    )
    if after is not None:
        query = query.where(DatasetCheckRecord.id < after)
    if ok is not None:
        query = query.where(DatasetCheckRecord.ok == ok)
    query = query.order_by(DatasetCheckRecord.id.desc())
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    return [
        DatasetCheckInfo(check.id, name, check.created_at, check.ok, check.source, check.report, number)
        for check, number in rows
    ]


def count_refused_checks(session: Session, names: Sequence[str]) -> dict[str, int]:
    """How many ingestion attempts a blocking check refused, for each of the datasets ``names`` (those with
    none are left out). One grouped query over these datasets' attempts (their ``dataset_id`` is indexed), so a
    page of datasets costs the same however many other datasets the store holds."""
    counts: dict[str, int] = {}
    for first in range(0, len(names), 200):  # SQLite refuses an expression deeper than 1,000
        chunk = list(names[first : first + 200])
        rows = session.execute(
            select(DatasetRecord.name, func.count())
            .join(DatasetCheckRecord, DatasetCheckRecord.dataset_id == DatasetRecord.id)
            .where(DatasetRecord.name.in_(chunk), DatasetCheckRecord.ok.is_(False))
            .group_by(DatasetRecord.name)
        ).all()
        counts |= {name: int(n) for name, n in rows}
    return counts


def record_split(
    session: Session,
    *,
    version_id: int,
    spec: dict[str, Any],
    train_rows: int,
    test_rows: int,
    test_digest: str,
    run_id: str | None,
) -> DatasetSplitInfo:
    """Record a split of a version; the first record of the same spec stands (a split is deterministic)."""
    key = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    _insert_ignoring_duplicates(
        session,
        DatasetSplitRecord,
        [
            {
                "version_id": version_id,
                "spec": spec,
                "spec_key": key,
                "train_rows": train_rows,
                "test_rows": test_rows,
                "test_digest": test_digest,
                "created_at": now(),
                "run_id": run_id,
            }
        ],
    )
    row = session.execute(
        select(DatasetSplitRecord).where(
            DatasetSplitRecord.version_id == version_id, DatasetSplitRecord.spec_key == key
        )
    ).scalar_one()
    return _split_info(row)


def list_splits(session: Session, version_id: int) -> list[DatasetSplitInfo]:
    """The splits recorded for a version, oldest first."""
    rows = session.execute(
        select(DatasetSplitRecord).where(DatasetSplitRecord.version_id == version_id).order_by(DatasetSplitRecord.id)
    ).scalars()
    return [_split_info(row) for row in rows]


def _split_info(row: DatasetSplitRecord) -> DatasetSplitInfo:
    return DatasetSplitInfo(
        id=row.id,
        version_id=row.version_id,
        spec=row.spec,
        train_rows=row.train_rows,
        test_rows=row.test_rows,
        test_digest=row.test_digest,
        created_at=row.created_at,
        run_id=row.run_id,
    )


def protected_versions(session: Session, version_ids: Sequence[int]) -> set[int]:
    """Those of ``version_ids`` that a registered model or a deployment still references (lineage)."""
    if not version_ids:
        return set()
    ids = [str(v) for v in version_ids]
    used = session.execute(
        select(LineageEdge.src_id).where(
            LineageEdge.src_kind == "dataset_version",
            LineageEdge.src_id.in_(ids),
            LineageEdge.dst_kind.in_(PROTECTING_KINDS),
        )
    ).scalars()
    return {int(v) for v in used}


def contents_in_use(session: Session, content_ids: Sequence[str]) -> set[str]:
    """Those of ``content_ids`` that some remaining version, of any dataset, still stores."""
    if not content_ids:
        return set()
    return set(
        session.execute(
            select(DatasetVersionRecord.content_id).where(DatasetVersionRecord.content_id.in_(content_ids))
        ).scalars()
    )


def delete_versions(session: Session, version_ids: Sequence[int]) -> None:
    """Delete version records (their reports stay, unlinked); children lose their parent link.

    A child version is a whole snapshot on its own, so deleting its parent loses no data of the child.
    """
    if not version_ids:
        return
    session.execute(
        update(DatasetVersionRecord).where(DatasetVersionRecord.parent_id.in_(version_ids)).values(parent_id=None)
    )
    session.execute(
        update(DatasetCheckRecord).where(DatasetCheckRecord.version_id.in_(version_ids)).values(version_id=None)
    )
    session.execute(delete(DatasetSplitRecord).where(DatasetSplitRecord.version_id.in_(version_ids)))
    session.execute(delete(DatasetVersionRecord).where(DatasetVersionRecord.id.in_(version_ids)))


def _versions() -> Any:
    parent = aliased(DatasetVersionRecord)
    return (
        select(DatasetVersionRecord, DatasetRecord.name, parent.number)
        .join(DatasetRecord, DatasetRecord.id == DatasetVersionRecord.dataset_id)
        .outerjoin(parent, parent.id == DatasetVersionRecord.parent_id)
    )


def _version_info(row: DatasetVersionRecord, name: str, parent_number: int | None) -> DatasetVersionInfo:
    return DatasetVersionInfo(
        id=row.id,
        dataset=name,
        number=row.number,
        content_id=row.content_id,
        created_at=row.created_at,
        rows=row.rows,
        size=row.size,
        source=row.source,
        schema=row.schema,
        profile=row.profile,
        report=row.report,
        watermark_column=row.watermark_column,
        watermark=row.watermark,
        parent_number=parent_number,
        run_id=row.run_id,
    )

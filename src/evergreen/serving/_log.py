"""The prediction log: every served prediction, written to the metadata store by one group-committing thread.

Durability, as implemented:

- ``durability="strict"`` (the default): :meth:`PredictionLog.record` returns only once the entry is
  committed to the store, or, if the store cannot take it, written and fsynced to a local buffer
  file. Either way an acknowledged prediction survives the process being killed right after. (On
  SQLite the store runs with ``synchronous=NORMAL`` in WAL mode: a commit survives the process being
  killed, not the machine losing power.)
- ``durability="async"``: :meth:`~PredictionLog.record` returns at once and the writer flushes in the
  background; :meth:`~PredictionLog.close` writes what is left. Entries still in memory are **lost if
  the process dies** — the price of not waiting for the store on the request path.

Group commit: callers from any number of threads (or event loops) enqueue entries (a request's
predictions as one item, :class:`PredictionBatch`, with one waiter); one writer thread takes everything
queued, up to ``max_batch`` rows, writes it in one transaction, then wakes every caller of that batch.
In strict mode it does not linger: whatever arrived while the previous transaction ran is the next
batch, so a lone request is written at once and a busy server's batches grow with its load. In async
mode the writer sleeps ``max_wait_ms`` after the first entry of a batch, for a fuller one.

Each row is validated and encoded once, on the caller's side, with orjson: the ``inputs`` column is
the canonical JSON of the inputs (sorted keys, no spaces; the text ``inputs_hash`` hashes), ``output``
the JSON of the output. The writer binds that text as it is (see ``evergreen.store.insert_predictions``).

When the store fails (unreachable, refusing, locked beyond ``store_timeout_s``), batches go to the
buffer folder instead and predictions keep being served; a background shipper retries every
``retry_interval_s`` and moves buffered rows into the store (idempotently), deleting a file only after
its rows are committed. Buffer files left by a crashed process are shipped when a log next starts on
the same folder (several processes may share one).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import math
import os
import queue
import re
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from evergreen.errors import PredictionLogError, StoreError, StoreSchemaError
from evergreen.store import PREDICTION_MODES, MetadataStore, PredictionWriter, prune_predictions

from ._buffer import DiskBuffer

logger = logging.getLogger("evergreen.serving")

Durability = Literal["strict", "async"]
InputsMode = Literal["full", "hash"]

_ID = re.compile(r"[0-9a-f]{32}")
#: A random hex digit as the UUID variant digit (binary 10xx).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_NAME_MAX = 255
#: How often a log with a retention prunes old predictions, in seconds.
PRUNE_EVERY_S = 3600.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def new_prediction_ids(count: int) -> list[str]:
    """``count`` fresh prediction ids: UUIDv7 (RFC 9562) as 32 hex digits, 74 random bits after the time.

    Time-ordered, not uuid4: a table keyed by random ids takes every insert on another page of its
    primary-key index, so a batch of 100 predictions dirtied ~100 pages, and the commit wrote them all;
    ids that grow with time land on the same few pages. Built as text from one read of random bytes: the
    milliseconds, the version digit 7, 12 random bits, the variant (8-b: 2 random bits), 60 random bits.
    """
    stamp = f"{time.time_ns() // 1_000_000:012x}7"
    noise = os.urandom(10 * count).hex()
    return [
        f"{stamp}{noise[k : k + 3]}{_VARIANT[noise[k + 3]]}{noise[k + 4 : k + 19]}" for k in range(0, 20 * count, 20)
    ]


@dataclass(frozen=True, slots=True)
class PredictionEntry:
    """One served prediction, as the server hands it to :meth:`PredictionLog.record`.

    ``id`` is made by the caller (:func:`new_prediction_ids`, or ``uuid.uuid4().hex``) so it can be
    returned to the client before the entry is written. ``inputs`` and ``output`` must be JSON-able
    (NumPy scalars and arrays are converted; NaN and infinities become null) and must not be changed
    after ``record`` is called.
    """

    id: str
    deployment: str
    model: str
    model_version: int
    mode: str
    inputs: Mapping[str, Any]
    output: Mapping[str, Any]
    latency_ms: float
    entity_id: str | None = None
    created_at: datetime = field(default_factory=_utc_now)


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """The predictions one model version made for one request: shared fields once, then one item per row.

    What the prediction server hands to :meth:`PredictionLog.record_batches_async`; ``ids``,
    ``inputs``, ``outputs`` and ``entity_ids`` (None: no entity for any row) are parallel sequences, with
    the same rules as :class:`PredictionEntry`'s fields.
    """

    deployment: str
    model: str
    model_version: int
    mode: str
    ids: Sequence[str]
    inputs: Sequence[Mapping[str, Any]]
    outputs: Sequence[Mapping[str, Any]]
    latency_ms: float
    entity_ids: Sequence[str | None] | None = None
    created_at: datetime = field(default_factory=_utc_now)

    @classmethod
    def of(cls, entry: PredictionEntry) -> PredictionBatch:
        """The one-row batch of ``entry``."""
        return cls(
            deployment=entry.deployment,
            model=entry.model,
            model_version=entry.model_version,
            mode=entry.mode,
            ids=[entry.id],
            inputs=[entry.inputs],
            outputs=[entry.output],
            latency_ms=entry.latency_ms,
            entity_ids=[entry.entity_id],
            created_at=entry.created_at,
        )


@dataclass(frozen=True)
class PredictionLogStats:
    """Counters of a :class:`PredictionLog` since it started, for ``/metrics`` and ``/readyz``.

    ``written`` rows went straight to the store in ``batches`` transactions; ``buffered_to_disk`` rows
    went to local buffer files, of which ``shipped`` reached the store later (shipping also counts rows
    left by earlier processes); ``dropped`` rows were lost (async mode, when store and disk both
    failed). ``store_reachable`` is False while batches are being diverted to disk.
    """

    queued: int
    written: int
    batches: int
    buffered_to_disk: int
    shipped: int
    buffer_files: int
    dropped: int
    store_reachable: bool
    last_error: str | None


class _Waiter:
    """A strict caller in a thread, blocked on a lock the writer releases."""

    __slots__ = ("_lock", "error")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.error: BaseException | None = None

    def settle(self, error: BaseException | None) -> None:
        self.error = error
        self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()
        if self.error is not None:
            raise self.error


@dataclass(slots=True)
class _AsyncWaiter:
    """Strict callers on an event loop, awaiting futures the writer settles through the loop."""

    loop: asyncio.AbstractEventLoop
    futures: list[asyncio.Future[None]]


@dataclass(slots=True)
class _Pending:
    """What the requests of one event-loop iteration logged, handed to the writer as one item."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    futures: list[asyncio.Future[None]] = field(default_factory=list)


_Item = tuple[list[dict[str, Any]], "_Waiter | _AsyncWaiter | None"]
_STOP = object()


class PredictionLog:
    """Logs served predictions to the metadata store at ``store_url`` (see the module docstring).

    Thread-safe; one per process (it owns a writer thread and a shipper thread). ``inputs="hash"``
    keeps only the sha256 of each entry's canonical JSON inputs, not the inputs themselves.
    ``retention_days`` makes the shipper delete predictions older than that (and their feedback)
    once an hour. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        store_url: str,
        *,
        buffer_dir: Path,
        durability: Durability = "strict",
        max_batch: int = 512,
        max_wait_ms: float = 2.0,
        inputs: InputsMode = "full",
        retention_days: float | None = None,
        store_timeout_s: float = 5.0,
        retry_interval_s: float = 5.0,
    ) -> None:
        if durability not in ("strict", "async"):
            raise PredictionLogError(f"durability must be 'strict' or 'async', but got {durability!r}")
        if inputs not in ("full", "hash"):
            raise PredictionLogError(f"inputs must be 'full' or 'hash', but got {inputs!r}")
        if max_batch < 1 or not max_wait_ms >= 0:
            raise PredictionLogError(
                f"max_batch >= 1 and max_wait_ms >= 0 must hold, but got (max_batch={max_batch}, "
                f"max_wait_ms={max_wait_ms})"
            )
        if retention_days is not None and not retention_days > 0:
            raise PredictionLogError(f"retention_days must be > 0 (or None to keep all), but got {retention_days}")
        if not retry_interval_s > 0:
            raise PredictionLogError(f"retry_interval_s must be > 0, but got {retry_interval_s}")
        self.store_url = store_url
        self.durability: Durability = durability
        self.inputs: InputsMode = inputs
        self.retention_days = retention_days
        self._max_batch = max_batch
        self._linger_s = max_wait_ms / 1000.0
        self._store_timeout_s = store_timeout_s
        self._retry_interval_s = retry_interval_s
        self._buffer = DiskBuffer(buffer_dir)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[asyncio.AbstractEventLoop, _Pending] = {}  # touched only by each loop's thread
        self._state_lock = threading.Lock()  # guards closing against enqueueing, and the counters
        self._ship_lock = threading.Lock()  # one shipping round at a time
        self._closed = False
        self._written = self._batches = self._buffered = self._shipped = self._dropped = 0
        self._last_error: str | None = None
        self._store_down = False
        self._last_prune = -math.inf
        self._wake_shipper = threading.Event()
        self._stop_shipper = threading.Event()
        self._store: MetadataStore | None = self._connect()
        self._writer_of_store = (
            None if self._store is None else PredictionWriter(self._store, timeout_s=store_timeout_s)
        )
        self._writer = threading.Thread(target=self._write_loop, name="evergreen-prediction-log", daemon=True)
        self._shipper = threading.Thread(target=self._ship_loop, name="evergreen-prediction-shipper", daemon=True)
        self._writer.start()
        self._shipper.start()  # its first round ships what earlier processes left in buffer_dir
        atexit.register(self.close)

    # ----- the request path -----

    def record(self, entry: PredictionEntry) -> None:
        """Log ``entry``. Strict: returns once it is durable (store or local buffer), raising
        :class:`PredictionLogError` if neither took it. Async: returns at once."""
        self.record_batches([PredictionBatch.of(entry)])

    async def record_async(self, entry: PredictionEntry) -> None:
        """:meth:`record` for an event loop: a strict caller awaits durability without blocking the loop."""
        await self.record_batches_async([PredictionBatch.of(entry)])

    def record_batches(self, batches: Sequence[PredictionBatch]) -> None:
        """Log every row of ``batches`` as one item (one wait, one group commit): :meth:`record` for many."""
        rows = self._rows(batches)
        if self.durability == "async":
            self._enqueue((rows, None))
            return
        waiter = _Waiter()
        self._enqueue((rows, waiter))
        waiter.wait()

    async def record_batches_async(self, batches: Sequence[PredictionBatch]) -> None:
        """:meth:`record_batches` for an event loop: one future for all the rows of a request.

        The rows of every request of one loop iteration reach the writer as one item, handed over by
        a callback after the iteration: one wake-up of the writer thread for all of them, not one per
        request (each wake-up let the writer take the GIL in the middle of a request).
        """
        rows = self._rows(batches)
        if self._closed:
            self._enqueue((rows, None))  # raises, naming the first prediction
        loop = asyncio.get_running_loop()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = _Pending()
            loop.call_soon(self._hand_over, loop)
        pending.rows += rows
        if self.durability == "async":
            return
        future: asyncio.Future[None] = loop.create_future()
        pending.futures.append(future)
        await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        pending = self._pending.pop(loop)
        waiter = _AsyncWaiter(loop, pending.futures) if pending.futures else None
        try:
            self._enqueue((pending.rows, waiter))
        except PredictionLogError as e:  # closed meanwhile: strict callers hear it, async rows are lost
            _settle_futures(pending.futures, e)
            if waiter is None:
                logger.error("%s", e)
                with self._state_lock:
                    self._dropped += len(pending.rows)

    def _enqueue(self, item: _Item) -> None:
        with self._state_lock:
            if self._closed:
                first = item[0][0]["id"] if item[0] else "(none)"
                raise PredictionLogError(
                    f"the prediction log for {self._display_url()} is closed; prediction {first} was not logged"
                )
            self._queue.put(item)

    def _rows(self, batches: Sequence[PredictionBatch]) -> list[dict[str, Any]]:
        """The ``predictions`` rows of ``batches``, validated, with inputs and output encoded as JSON text."""
        rows: list[dict[str, Any]] = []
        full = self.inputs == "full"
        for batch in batches:
            first = batch.ids[0] if batch.ids else "(none)"
            _check_shared(batch, first)
            created_at = batch.created_at.astimezone(UTC)
            latency = float(batch.latency_ms)
            count = len(batch.ids)
            entities = batch.entity_ids if batch.entity_ids is not None else [None] * count
            if not len(batch.inputs) == len(batch.outputs) == len(entities) == count:
                raise PredictionLogError(
                    f"prediction {first}: ids, inputs, outputs and entity_ids must be as long as each other, but "
                    f"got ({count}, {len(batch.inputs)}, {len(batch.outputs)}, {len(entities)})"
                )
            for pid, inputs, output, entity in zip(batch.ids, batch.inputs, batch.outputs, entities, strict=True):
                _check_row(pid, entity, inputs, output)
                inputs_text = _row_json(inputs, pid, "inputs")
                rows.append(
                    {
                        "id": pid,
                        "deployment": batch.deployment,
                        "model": batch.model,
                        "model_version": batch.model_version,
                        "mode": batch.mode,
                        "entity_id": entity,
                        "inputs": inputs_text.decode() if full else None,
                        "inputs_hash": hashlib.sha256(inputs_text).hexdigest(),
                        "output": _row_json(output, pid, "output").decode(),
                        "latency_ms": latency,
                        "created_at": created_at,
                    }
                )
        return rows

    # ----- the writer thread -----

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take_batch()
            if batch:
                try:
                    self._write(batch)
                except BaseException as e:  # a bug must not leave callers waiting forever
                    logger.exception("prediction log writer failed on a batch of %d", len(batch))
                    self._settle(batch, PredictionLogError(f"the prediction log's writer failed: {e!r}"))
        # close() has set _closed under the lock before queueing _STOP, so nothing can follow it.

    def _take_batch(self) -> tuple[list[_Item], bool]:
        """(the next batch, whether the log is closing); blocks for the first entry.

        Strict: callers are waiting, so what is queued now is the batch. Async: the writer sleeps
        ``max_wait_ms`` once, then takes what came; it is not woken by every entry meanwhile (each
        wake-up let it take the GIL from the event loop).
        """
        first = self._queue.get()
        if first is _STOP:
            return [], True
        if self.durability == "async" and self._linger_s > 0:
            time.sleep(self._linger_s)
        batch: list[_Item] = [first]
        size = len(first[0])
        while size < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
            size += len(item[0])
        return batch, False

    def _write(self, batch: list[_Item]) -> None:
        rows = [row for item_rows, _ in batch for row in item_rows]
        writer = self._writer_of_store
        if writer is not None and not self._store_down:
            try:
                writer.write(rows)
            except StoreError as e:
                self._note_store_failure(e, len(rows))
            else:
                with self._state_lock:
                    self._written += len(rows)
                    self._batches += 1
                self._settle(batch, None)
                return
        try:
            self._buffer.append(rows)
        except OSError as e:
            error = PredictionLogError(
                f"{len(rows)} prediction(s) could not be logged: the store failed ({self._last_error}) and "
                f"the buffer folder {self._buffer.directory} too ({e}); free space or fix its permissions"
            )
            logger.error("%s", error)
            with self._state_lock:
                self._last_error = str(error)
                if self.durability == "async":
                    self._dropped += len(rows)
            self._settle(batch, error)
            return
        with self._state_lock:
            self._buffered += len(rows)
        self._settle(batch, None)

    def _note_store_failure(self, error: BaseException, rows: int) -> None:
        with self._state_lock:
            first = not self._store_down
            self._store_down = True
            self._last_error = str(error)
        if first:
            logger.warning(
                "prediction log: the store failed (%s); buffering predictions in %s until it is back "
                "(%d in this batch)",
                error,
                self._buffer.directory,
                rows,
            )

    def _settle(self, batch: list[_Item], error: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = defaultdict(list)
        for _, waiter in batch:
            if isinstance(waiter, _Waiter):
                waiter.settle(error)
            elif waiter is not None:
                by_loop[waiter.loop] += waiter.futures
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # RuntimeError: the loop was closed, nobody awaits any more
                loop.call_soon_threadsafe(_settle_futures, futures, error)

    # ----- the shipper thread -----

    def _ship_loop(self) -> None:
        while not self._stop_shipper.is_set():
            try:
                self.ship_buffered()
                self._maybe_prune()
            except Exception:  # keep shipping; the error is in stats() and the log
                logger.exception("prediction log shipper failed")
            self._wake_shipper.wait(self._retry_interval_s)
            self._wake_shipper.clear()

    def ship_buffered(self) -> int:
        """Move buffered rows (this process's and any left by others) into the store now; returns how many.

        Runs by itself every ``retry_interval_s``; call it to ship at once. Returns 0, with the reason in
        :meth:`stats`, while the store is unreachable.
        """
        with self._ship_lock:
            if self._store is None:
                self._reconnect()
            writer = self._writer_of_store
            if writer is None:
                return 0
            try:
                result = self._buffer.ship(writer.write)
            except StoreError as e:
                self._note_store_failure(e, 0)
                return 0
            with self._state_lock:
                self._shipped += result.rows
                was_down, self._store_down = self._store_down, False
            if was_down:
                logger.warning("prediction log: the store is back; predictions go to it again")
            if result.rows:
                logger.info(
                    "prediction log: shipped %d buffered prediction(s) from %d file(s)", result.rows, result.files
                )
            return result.rows

    def prune(self) -> int:
        """Delete predictions older than ``retention_days`` (and their feedback) now; returns how many."""
        if self.retention_days is None or self._store is None:
            return 0
        with self._store.session() as session:
            return prune_predictions(session, _utc_now() - timedelta(days=self.retention_days))

    def _maybe_prune(self) -> None:
        if self.retention_days is None or self._store_down or time.monotonic() - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = time.monotonic()
        deleted = self.prune()
        if deleted:
            logger.info("prediction log: retention of %s days deleted %d prediction(s)", self.retention_days, deleted)

    def _connect(self) -> MetadataStore | None:
        try:
            return MetadataStore(self.store_url, timeout_s=self._store_timeout_s)
        except StoreSchemaError:
            raise
        except StoreError as e:
            self._note_store_failure(e, 0)
            return None

    def _reconnect(self) -> None:
        store = self._connect()
        if store is not None:
            self._writer_of_store = PredictionWriter(store, timeout_s=self._store_timeout_s)
            self._store = store

    # ----- the rest -----

    def stats(self) -> PredictionLogStats:
        """A snapshot of the counters (see :class:`PredictionLogStats`)."""
        with self._state_lock:
            return PredictionLogStats(
                queued=self._queue.qsize(),
                written=self._written,
                batches=self._batches,
                buffered_to_disk=self._buffered,
                shipped=self._shipped,
                buffer_files=len(self._buffer.pending_files()),
                dropped=self._dropped,
                store_reachable=self._store is not None and not self._store_down,
                last_error=self._last_error,
            )

    def close(self) -> None:
        """Write everything queued (to the store, or to the buffer if it fails), then stop. Idempotent.

        Rows in buffer files stay there until a log ships them (this one no longer does).
        """
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        atexit.unregister(self.close)
        self._writer.join()
        self._stop_shipper.set()
        self._wake_shipper.set()
        self._shipper.join()
        self._buffer.close()
        if self._writer_of_store is not None:
            self._writer_of_store.close()
        if self._store is not None:
            self._store.dispose()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _display_url(self) -> str:
        return self._store.display_url if self._store is not None else "the metadata store"


def _settle_futures(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # cancelled: the caller went away
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _check_shared(batch: PredictionBatch, first: str) -> None:
    """The fields a batch's rows share: names, mode, version, latency and time (``first`` names the batch)."""
    for name in ("deployment", "model"):
        value = getattr(batch, name)
        if not isinstance(value, str) or not 0 < len(value) <= _NAME_MAX:
            raise PredictionLogError(
                f"prediction {first}: {name} must be a name of 1 to 255 characters, but got {value!r}"
            )
    if batch.mode not in PREDICTION_MODES:
        raise PredictionLogError(f"prediction {first}: mode must be one of {PREDICTION_MODES}, but got {batch.mode!r}")
    if isinstance(batch.model_version, bool) or not isinstance(batch.model_version, int):
        raise PredictionLogError(f"prediction {first}: model_version must be an int, but got {batch.model_version!r}")
    latency = float(batch.latency_ms)
    if not math.isfinite(latency) or latency < 0:
        raise PredictionLogError(f"prediction {first}: latency_ms must be a finite number >= 0, but got {latency}")
    if not isinstance(batch.created_at, datetime) or batch.created_at.tzinfo is None:
        raise PredictionLogError(
            f"prediction {first}: created_at must be a timezone-aware datetime (datetime.now(UTC)), "
            f"but got {batch.created_at!r}"
        )


def _check_row(pid: Any, entity: Any, inputs: Any, output: Any) -> None:
    if not isinstance(pid, str) or not _ID.fullmatch(pid):
        raise PredictionLogError(f"prediction id must be 32 lowercase hex digits (uuid4().hex), but got {pid!r}")
    if entity is not None and (not isinstance(entity, str) or len(entity) > _NAME_MAX):
        raise PredictionLogError(
            f"prediction {pid}: entity_id must be a string of at most 255 characters or None, but got {entity!r}"
        )
    for name, value in (("inputs", inputs), ("output", output)):
        if type(value) is not dict and not isinstance(value, Mapping):  # the type check first: ABCs are slow
            raise PredictionLogError(f"prediction {pid}: {name} must be a dict, but got a {type(value).__name__}")


def json_text(value: Any, what: str) -> bytes:
    """The canonical JSON of ``value`` (sorted keys, no spaces, UTF-8), encoded once with orjson.

    NumPy scalars and arrays become numbers and lists, NaN and infinities null; anything else that is
    not JSON-able is a :class:`PredictionLogError` naming ``what``. The text of the inputs is what
    ``inputs_hash`` hashes, so equal inputs hash equally whatever their key order.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: NumPy values, non-str keys, huge ints …
        cleaned = _clean(value, what)
    try:
        return orjson.dumps(cleaned, option=orjson.OPT_SORT_KEYS)
    except TypeError as e:
        raise PredictionLogError(f"{what} cannot be written as JSON: {e}") from e


def _row_json(value: Any, pid: str, name: str) -> bytes:
    """:func:`json_text` of a row's ``name``, whose message is made only when it is needed."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json_text(value, f"prediction {pid}: {name}")


def canonical_json(value: Any, what: str) -> tuple[Any, str]:
    """(a JSON-clean copy of ``value``, its canonical JSON text): :func:`json_text`, decoded again."""
    text = json_text(value, what)
    return orjson.loads(text), text.decode()


def _clean(value: Any, what: str) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v, f"{what}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, f"{what}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, datetime):
        return value.isoformat()
    tolist = getattr(value, "tolist", None)  # NumPy scalars and arrays
    if callable(tolist):
        return _clean(tolist(), what)
    raise PredictionLogError(
        f"{what} is a {type(value).__name__}, which is not JSON-able; give numbers, strings, booleans, None, "
        "lists or dicts"
    )

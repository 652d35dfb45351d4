"""Model calls of concurrent requests, run as one call per model version and event-loop iteration.

A one-row prediction spends most of its model time in the call itself, not in the row: ONNX Runtime
takes about as long for 16 rows as for one, and a native scikit-learn model builds a DataFrame per call.
Requests that reach a model in the same loop iteration (under load, several connections' requests are
read together) wait for a callback the first of them schedules; it runs the model once on all their
rows and hands each request its part. A lone request waits one loop iteration, microseconds.

If the joint call fails, each request's rows run again on their own, so a request whose input the model
cannot take gets its own error and the others their answers, as without coalescing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ._replica import LoadedModel

Answer = tuple[list[Any], list[list[float]] | None]


@dataclass(slots=True)
class _Call:
    rows: list[dict[str, Any]]
    values: list[list[Any]] | None
    future: asyncio.Future[Answer]


@dataclass(slots=True)
class _Round:
    """The calls that reached one model version in one loop iteration."""

    model: LoadedModel
    calls: list[_Call] = field(default_factory=list)


class Coalescer:
    """Joins the model calls of one loop iteration (see the module docstring). One per app."""

    def __init__(self) -> None:
        self._rounds: dict[tuple[asyncio.AbstractEventLoop, int], _Round] = {}

    async def predict(self, model: LoadedModel, rows: list[dict[str, Any]], values: list[list[Any]] | None) -> Answer:
        """``model.predict(rows, values)``, run together with the other calls to ``model`` of this iteration."""
        loop = asyncio.get_running_loop()
        key = (loop, id(model))
        round_ = self._rounds.get(key)
        if round_ is None:
            round_ = self._rounds[key] = _Round(model)
            loop.call_soon(self._run, key)
        future: asyncio.Future[Answer] = loop.create_future()
        round_.calls.append(_Call(rows, values, future))
        return await future

    def _run(self, key: tuple[asyncio.AbstractEventLoop, int]) -> None:
        round_ = self._rounds.pop(key)
        calls = [c for c in round_.calls if not c.future.done()]  # a cancelled request takes no part
        if len(calls) > 1:
            try:
                answer = round_.model.predict(*_joined(calls))
            except Exception:  # noqa: BLE001 - each call runs alone below and gets its own error
                pass
            else:
                _split(calls, answer)
                return
        for call in calls:
            try:
                call.future.set_result(round_.model.predict(call.rows, call.values))
            except Exception as e:  # noqa: BLE001 - the request that made the call turns it into its answer
                call.future.set_exception(e)


def _joined(calls: list[_Call]) -> tuple[list[dict[str, Any]], list[list[Any]] | None]:
    """Every call's rows, and their values in signature order when every call has them."""
    rows = [row for call in calls for row in call.rows]
    if any(call.values is None for call in calls):
        return rows, None
    return rows, [line for call in calls for line in call.values or ()]


def _split(calls: list[_Call], answer: Answer) -> None:
    labels, probabilities = answer
    start = 0
    for call in calls:
        end = start + len(call.rows)
        call.future.set_result((labels[start:end], None if probabilities is None else probabilities[start:end]))
        start = end

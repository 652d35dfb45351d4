"""Hashes that decide caching: a step's code, and a step call's cache key."""

from __future__ import annotations

import hashlib
import inspect
import json
import marshal
import textwrap
from collections.abc import Callable, Mapping
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces, so equal values hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def code_hash(function: Callable[..., Any]) -> str:
    """sha256 of a function's source (its bytecode when no source is available, e.g. in a REPL)."""
    try:
        text = textwrap.dedent(inspect.getsource(function)).encode()
    except (OSError, TypeError):
        text = marshal.dumps(function.__code__)
    return hashlib.sha256(text).hexdigest()


def cache_key(*, code: str, params: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    """The identity of a step call: its code, its parameters and the ids of its input artifacts."""
    payload = canonical_json({"code": code, "params": dict(params), "inputs": dict(inputs)})
    return hashlib.sha256(payload.encode()).hexdigest()

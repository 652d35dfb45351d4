"""Hashes that decide caching: a step's code (with the project code it calls), and a step call's cache key.

A step's code is its own code plus that of every *project-local* function and class it reaches through
its global names (transitively), and the simple constants those functions read. Project-local means
defined in a module whose file lies under the project folder and outside any installed-library folder
(the standard library, site-packages, the virtualenv). So editing a helper in ``features.py`` changes the
cache key of every step that calls it, while editing pandas, or an unrelated function, does not.

Code is hashed from the compiled functions this process runs, not from the files on disk: in a
long-running process (``evergreen server``) a file edited after it was imported must not give a key
for code that is not the code that runs. Line numbers and file names are left out, so moving a
function, or editing the lines above it, changes nothing.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import marshal
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

#: At most this many functions and classes are followed from one step (the rest is not covered).
MAX_COVERED = 200
_CONSTANT_TYPES = (bool, int, float, complex, str, bytes, type(None))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces, so equal values hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def code_hash(function: Callable[..., Any]) -> str:
    """sha256 of a function's source (its bytecode when no source is available, e.g. in a REPL)."""
    return _sha256(_source(function))


def cache_key(*, code: str, params: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    """The identity of a step call: its code, its parameters and the ids of its input artifacts."""
    payload = canonical_json({"code": code, "params": dict(params), "inputs": dict(inputs)})
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class CodeFingerprint:
    """What a step's cache key knows of its code.

    ``hash`` goes into the cache key. ``covers`` maps each piece of code it covers (``module:qualname`` of
    the step and of the project functions and classes it reaches, ``module:NAME`` of the constants they
    read) to the first 12 hex digits of that piece's hash, for people to read. With ``version`` (from
    ``@eg.step(version=...)``) the hash is the version's and ``covers`` is empty.
    """

    hash: str
    covers: dict[str, str] = field(default_factory=dict)
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept with each run's DAG."""
        return {"hash": self.hash, "covers": dict(self.covers), "version": self.version}


def code_fingerprint(function: Callable[..., Any], *, root: Path, version: str | None = None) -> CodeFingerprint:
    """The fingerprint of ``function`` and the project code under ``root`` that it reaches."""
    if version is not None:
        return CodeFingerprint(_sha256(canonical_json({"version": version}).encode()), {}, version)
    covers = _Walker(Path(root).resolve()).walk(function)
    return CodeFingerprint(_sha256(canonical_json(covers).encode()), {k: v[:12] for k, v in covers.items()})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _constant(value: Any) -> str:
    """A constant of compiled code as text that is the same in every process (set order is not)."""
    if isinstance(value, types.CodeType):
        return _code_digest(value)
    if isinstance(value, tuple):
        return "(" + ",".join(_constant(v) for v in value) + ")"
    if isinstance(value, frozenset):
        return "frozenset(" + ",".join(sorted(_constant(v) for v in value)) + ")"
    if isinstance(value, _CONSTANT_TYPES):
        return repr(value)
    # Other objects (a default argument such as a sentinel `object()`) by type only: their repr may hold
    # a memory address, which differs in every process and would make the key never match.
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _code_digest(code: types.CodeType) -> str:
    """sha256 of what a code object does: its bytecode, constants, names and signature, not where it is."""
    parts = [
        code.co_code.hex(),
        _constant(code.co_consts),
        repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)),
        repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)),
    ]
    return _sha256("\n".join(parts).encode())


def _function_digest(function: types.FunctionType) -> str:
    """The code's digest with the function's default values (they change what a call does)."""
    defaults = _constant(function.__defaults__ or ()) + _constant(
        tuple(sorted((function.__kwdefaults__ or {}).items()))
    )
    return _sha256(f"{_code_digest(function.__code__)}\n{defaults}".encode())


def _class_digest(cls: type) -> str:
    """A class's bases, methods (by their code) and simple class attributes."""
    parts = [repr([f"{base.__module__}.{base.__qualname__}" for base in cls.__mro__[1:]])]
    for name, member in sorted(vars(cls).items()):
        method = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        if isinstance(method, types.FunctionType):
            parts.append(f"{name}={_function_digest(method)}")
        elif isinstance(member, _CONSTANT_TYPES) and not name.startswith("__"):
            parts.append(f"{name}={member!r}")
    return _sha256("\n".join(parts).encode())


def _source(obj: Any) -> bytes:
    try:
        return textwrap.dedent(inspect.getsource(obj)).encode()
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return marshal.dumps(code) if code is not None else repr(obj).encode()


@cache
def _library_folders() -> tuple[Path, ...]:
    """Folders whose modules are installed code, never the project's."""
    paths = sysconfig.get_paths()
    folders = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    folders.update({sys.prefix, sys.base_prefix, sys.exec_prefix})
    return tuple(Path(f).resolve() for f in folders)


def _code_names(code: types.CodeType) -> set[str]:
    """Global and attribute names a code object (and the functions, lambdas and comprehensions in it) uses."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _code_names(constant)
    return names


def _unwrapped(value: Any) -> Any:
    """The function behind decorators that keep it as ``__wrapped__`` (``functools.wraps``, ``@eg.step``).

    Read from the instance's own ``__dict__``, never through ``getattr``: a global may be a proxy whose
    attribute lookup runs code or raises.
    """
    for _ in range(16):  # decorators stack a few deep; a cycle of __wrapped__ ends here
        if isinstance(value, type):
            return value
        try:
            namespace = object.__getattribute__(value, "__dict__")
        except AttributeError:
            return value
        wrapped = namespace.get("__wrapped__") if isinstance(namespace, dict) else None
        if wrapped is None:
            return value
        value = wrapped
    return value


class _Walker:
    """Follows global references from a function to the project code it reaches (cycles visited once)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.covers: dict[str, str] = {}
        self.seen: set[int] = set()
        self.local_modules: dict[str, bool] = {}

    def walk(self, function: Callable[..., Any]) -> dict[str, str]:
        target = _unwrapped(function)
        if not isinstance(target, types.FunctionType):
            return {
                f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', '?')}": code_hash(function)
            }
        self.seen.add(id(target))
        self._cover_function(target, always=True)
        return dict(sorted(self.covers.items()))

    def _is_local(self, module_name: str | None) -> bool:
        if module_name is None:
            return False
        if module_name not in self.local_modules:
            module = sys.modules.get(module_name)
            file = getattr(module, "__file__", None)
            local = False
            if file:
                path = Path(os.path.abspath(file))
                local = path.is_relative_to(self.root) and not any(
                    path.is_relative_to(folder) for folder in _library_folders()
                )
                local = local and not {"site-packages", "dist-packages"} & set(path.parts)
            self.local_modules[module_name] = local
        return self.local_modules[module_name]

    def _cover_function(self, function: types.FunctionType, *, always: bool = False) -> None:
        if not always and not self._is_local(function.__module__):
            return
        if len(self.covers) >= MAX_COVERED:
            return
        self.covers[f"{function.__module__}:{function.__qualname__}"] = _function_digest(function)
        namespace = function.__globals__
        names = sorted(_code_names(function.__code__))
        for name in names:
            if name in namespace:
                self._follow(namespace[name], names, owner=function.__module__, name=name)
        for cell in function.__closure__ or ():
            try:
                self._follow(cell.cell_contents, names, owner=None, name=None)
            except ValueError:  # an empty cell (a variable assigned later)
                continue

    def _cover_class(self, cls: type) -> None:
        if not self._is_local(cls.__module__) or len(self.covers) >= MAX_COVERED:
            return
        self.covers[f"{cls.__module__}:{cls.__qualname__}"] = _class_digest(cls)
        for member in vars(cls).values():
            method = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if isinstance(method, types.FunctionType) and id(method) not in self.seen:
                self.seen.add(id(method))
                self._cover_function(method)

    def _follow(self, value: Any, names: list[str], *, owner: str | None, name: str | None) -> None:
        if isinstance(value, _CONSTANT_TYPES):
            if owner is not None and self._is_local(owner) and len(self.covers) < MAX_COVERED:
                self.covers[f"{owner}:{name}"] = _sha256(repr(value).encode())
            return
        if isinstance(value, types.ModuleType):
            if self._is_local(value.__name__):
                module_namespace = vars(value)
                for attribute in names:  # `helpers.clean(x)` uses the names "helpers" and "clean"
                    if attribute in module_namespace:
                        self._follow(module_namespace[attribute], names, owner=value.__name__, name=attribute)
            return
        target = _unwrapped(value)
        if id(target) in self.seen:
            return
        if isinstance(target, types.FunctionType):
            self.seen.add(id(target))
            self._cover_function(target)
        elif isinstance(target, type):
            self.seen.add(id(target))
            self._cover_class(target)

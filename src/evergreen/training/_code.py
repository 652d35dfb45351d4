"""The version of a project's source code, as git knows it, and what changed between two versions.

Only *tracked* files count as code: a scores CSV or a notebook that was never ``git add``-ed is not
code, and Evergreen's own folder ``.evergreen/`` (the metadata database and the artifacts) never is,
even when a ``git add -A`` committed it. The version is the commit plus, for every tracked file whose
content differs from that commit, the git blob id of its content now; ``source_hash`` digests the
content of every tracked file, so two trials whose code is the same compare equal even when commits
in between changed only ignored things (such as a committed ``.evergreen/`` database).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

#: Path components that are never code: Evergreen's metadata database and artifact store live here.
IGNORED_FOLDERS = frozenset({".evergreen"})
_GIT_TIMEOUT_S = 30


def _git(folder: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    """``git args`` run in ``folder``: its stdout, or None when git is missing or the command fails."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=folder, input=stdin, capture_output=True, timeout=_GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _is_code(path: str) -> bool:
    return not IGNORED_FOLDERS.intersection(PurePosixPath(path).parts)


def _paths(output: bytes | None) -> list[str]:
    return [p for p in (output or b"").decode(errors="surrogateescape").split("\0") if p and _is_code(p)]


def _blob_ids(root: Path, paths: list[str]) -> dict[str, str | None]:
    """The git blob id of each file's content in the work tree (None for a deleted file)."""
    present = [p for p in paths if (root / p).is_file()]
    ids: dict[str, str | None] = dict.fromkeys(paths)
    if present:
        out = _git(root, "hash-object", "--stdin-paths", stdin="\n".join(present).encode(errors="surrogateescape"))
        for path, blob in zip(present, (out or b"").decode().split(), strict=False):
            ids[path] = blob
    return ids


def _no_git_reason(folder: Path) -> str:
    if _git(folder, "--version") is None:
        return "git is not installed, so the code version was not recorded"
    if _git(folder, "rev-parse", "--is-inside-work-tree") is None:
        return f"{folder} is not in a git repository"
    return (
        f"{folder} is in a git repository with no commits yet; commit your code "
        "(git add train.py …; git commit) so that trials record its version"
    )


def code_version(folder: Path) -> dict[str, Any]:
    """The git commit of ``folder`` and the tracked files changed since it.

    Returns ``git_sha``, ``dirty`` (whether a tracked file differs from the commit), ``changed`` (each
    such file, relative to the repository root, with the git blob id of its content now, or None when
    it was deleted), ``diff_hash`` (a digest of ``changed``, None when clean) and ``source_hash`` (a
    digest of every tracked file's content now). Untracked files and ``.evergreen/`` are not code.
    Without a commit every field is None and ``reason`` says why (no git, not a repository, a
    repository with no commits yet).
    """
    sha = _git(folder, "rev-parse", "HEAD")
    top = _git(folder, "rev-parse", "--show-toplevel")
    if sha is None or top is None:
        return {
            "git_sha": None,
            "dirty": None,
            "diff_hash": None,
            "source_hash": None,
            "changed": {},
            "reason": _no_git_reason(folder),
        }
    root = Path(top.decode().strip())
    changed = _blob_ids(root, sorted(_paths(_git(root, "diff", "HEAD", "--name-only", "--no-renames", "-z"))))
    index: dict[str, str | None] = {}
    for line in (_git(root, "ls-files", "--stage", "-z") or b"").decode(errors="surrogateescape").split("\0"):
        if line:
            meta, path = line.split("\t", 1)
            if _is_code(path):
                index[path] = meta.split()[1]
    unstaged = _paths(_git(root, "diff", "--name-only", "--no-renames", "-z"))
    source = {**index, **_blob_ids(root, unstaged), **changed}
    return {
        "git_sha": sha.decode().strip(),
        "dirty": bool(changed),
        "diff_hash": _digest(changed) if changed else None,
        "source_hash": _digest({p: b for p, b in source.items() if b is not None}),
        "changed": changed,
    }


def _digest(files: Mapping[str, str | None]) -> str:
    return hashlib.sha256(json.dumps(dict(sorted(files.items())), separators=(",", ":")).encode()).hexdigest()


def _committed_blobs(root: Path, sha: str, paths: list[str]) -> dict[str, str | None] | None:
    """Each path's blob id in commit ``sha`` (None where the commit lacks it); None if the commit is unknown."""
    if _git(root, "cat-file", "-e", f"{sha}^{{commit}}") is None:
        return None
    out = _git(root, "ls-tree", "-z", sha, "--", *paths) if paths else b""
    blobs: dict[str, str | None] = dict.fromkeys(paths)
    for entry in (out or b"").decode(errors="surrogateescape").split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            blobs[path] = meta.split()[2]
    return blobs


def changed_files(then: Mapping[str, Any], now: Mapping[str, Any], folder: Path) -> list[str] | None:
    """The tracked files whose content differs between a recorded code version ``then`` and ``now``.

    None when it cannot be told: ``then`` has no commit, or its commit is not in this repository.
    """
    then_sha, now_sha = then.get("git_sha"), now.get("git_sha")
    top = _git(folder, "rev-parse", "--show-toplevel")
    if not then_sha or not now_sha or top is None:
        return None
    root = Path(top.decode().strip())
    between = _paths(_git(root, "diff", "--name-only", "--no-renames", "-z", str(then_sha), str(now_sha)))
    then_changed: Mapping[str, str | None] = then.get("changed") or {}
    now_changed: Mapping[str, str | None] = now.get("changed") or {}
    candidates = sorted({*between, *then_changed, *now_changed})
    then_blobs = _committed_blobs(root, str(then_sha), candidates)
    now_blobs = _committed_blobs(root, str(now_sha), candidates)
    if then_blobs is None or now_blobs is None:
        return None
    then_blobs.update(then_changed)
    now_blobs.update(now_changed)
    return [p for p in candidates if then_blobs[p] != now_blobs[p]]


def code_note(then: Mapping[str, Any], now: Mapping[str, Any], folder: Path) -> tuple[bool, str]:
    """Whether the code now is the recorded one, and a sentence that says so or names what changed."""
    if not then.get("git_sha"):
        return False, f"code not compared: when the trial ran, {then.get('reason') or 'no git commit was recorded'}"
    if not now.get("git_sha"):
        return False, f"code not compared: {now.get('reason')}"
    if then.get("source_hash") and then.get("source_hash") == now.get("source_hash"):
        return True, "same code as recorded"
    if not then.get("source_hash") and (then.get("git_sha"), then.get("diff_hash")) == (
        now.get("git_sha"),
        now.get("diff_hash"),
    ):
        return True, "same code as recorded"
    files = changed_files(then, now, folder)
    if files is None:
        return False, (
            f"code differs: the recorded commit {str(then['git_sha'])[:12]} is not in this repository, "
            f"now {str(now['git_sha'])[:12]}"
        )
    if not then.get("source_hash") and then.get("dirty"):  # recorded before changed files were named
        return False, (
            f"code not compared file by file: the trial ran on {str(then['git_sha'])[:12]} with uncommitted "
            "changes recorded only as a hash" + (f"; {', '.join(files)} changed since that commit" if files else "")
        )
    if not files:  # a trial recorded before source hashes, whose files are all as they were
        return True, "same code as recorded"
    shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    return False, f"code differs: {shown} changed since the trial"

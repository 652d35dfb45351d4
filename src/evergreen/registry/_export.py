"""Export a registered version's verified ONNX copy, with its signature, for edge or in-app inference."""

from __future__ import annotations

import json
from pathlib import Path

from evergreen.config import Settings
from evergreen.errors import RegistryError
from evergreen.training import onnx_bytes, read_package
from evergreen.workspace import open_workspace

from ._registry import get


def export_onnx(name: str, ref: str | int | None, path: Path, *, settings: Settings | None = None) -> tuple[Path, Path]:
    """Write the version's verified ONNX file to ``path`` and its signature beside it
    (``path`` with ``.signature.json``); returns both paths.

    Raises:
        RegistryError: the version has no verified ONNX copy (the recorded reason is given), or the
            target folder does not exist.
    """
    workspace = open_workspace(settings)
    version = get(name, ref, settings=workspace.settings)
    artifacts = workspace.artifacts
    package = read_package(version.package_id, artifacts)
    if not package.onnx_verified:
        reason = package.onnx_status.get("reason") or "parity was not proven"
        raise RegistryError(f"{version.ref} has no verified ONNX copy ({reason}); it can be served natively only")
    if not path.parent.is_dir():
        raise RegistryError(f"cannot write {path}: folder {path.parent} does not exist")
    data = onnx_bytes(package, artifacts)
    signature = path.with_name(path.name.removesuffix(".onnx") + ".signature.json")
    meta = {
        "model": version.ref,
        "signature": package.signature.model_dump(mode="json"),
        "parity": package.onnx_status.get("parity"),
        "requirements": package.requirements,
    }
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(data)
    temporary.replace(path)
    signature.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return path, signature

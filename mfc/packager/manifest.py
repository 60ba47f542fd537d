"""The manifest inside every code package: files with sizes and hashes, mfc version, flow, git.

It is the archive's first member, ``.mfc-manifest.json``, serialized with sorted keys so that
the same inputs give the same bytes. Nothing machine-specific goes in (no absolute paths, no
timestamps, no user names).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MANIFEST_NAME = ".mfc-manifest.json"
MANIFEST_FORMAT = 1
GIT_TIMEOUT_S = 5.0


def mfc_version() -> str:
    """The running mfc's version."""
    from mfc.version import __version__

    return __version__


def _in_git_tree(root: Path) -> bool:
    return any((directory / ".git").exists() for directory in (root, *root.parents))


def _git(root: Path, *args: str) -> str | None:
    import subprocess  # only packaging needs it; unpacking in a task should not pay for it

    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_info(root: str | Path) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` when ``root`` is in a git work tree with a commit, else
    None. ``dirty`` covers changes under ``root`` only (untracked files included); it is None when
    ``git status`` timed out. Two git processes at most.
    """
    root = Path(root)
    if not _in_git_tree(root):
        return None
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    if not head or not head.strip():
        return None
    status = _git(root, "status", "--porcelain", "--", ".")
    return {"commit": head.strip(), "dirty": None if status is None else bool(status.strip())}


def build_manifest(files: Iterable[tuple[str, int, str]], flow_file: str,
                   git: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest for ``files`` given as (path, size, sha256), in the archive's order."""
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "mfc_version": mfc_version(),
        "flow_file": flow_file,
        "files": [{"path": path, "size": size, "sha256": sha} for path, size, sha in files],
    }
    if git is not None:
        manifest["git"] = git
    return manifest


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    """Deterministic bytes for ``manifest``."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8")

"""Make a task's code available before it runs: the run's code package, fetched from the
datastore, checked and unpacked once into a content-addressed cache, wherever the task runs (a
spawned process, a container, a Batch job). A spec without a package runs its flow file as is.

The cache (``$MFC_CODE_CACHE``, else ``$XDG_CACHE_HOME/mfc/code``, else ``~/.cache/mfc/code``)
holds one directory per package, named by its sha256: every task of a run, and every later run
of the same code, reuses it. A package is unpacked into a private directory beside it and
renamed into place, so tasks unpacking the same package at once never see half of it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from typing import Any

from mfc.exceptions import MfcError
from mfc.runner.taskspec import TaskSpec

MARKER = ".mfc-unpacked"  # written last, inside the private directory: the package is whole
_SHA256 = re.compile(r"[0-9a-f]{64}")


def code_cache_dir() -> str:
    """Where unpacked code packages are kept (see the module docstring)."""
    explicit = os.environ.get("MFC_CODE_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mfc", "code")


def prepare_code(spec: TaskSpec, blobs: Any = None) -> str:
    """Return the path of the flow file to import for this task (inside the unpacked package,
    whose root also goes on ``sys.path``, so the project's own modules come from it too).
    ``blobs``: the datastore's blob store, when the caller has one open (no second S3 client)."""
    if spec.code_package is None:
        return spec.flow_file
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store

    store = ArtifactStore(blobs if blobs is not None else open_blob_store(spec.datastore_root), spec.flow_name)
    sha = str(spec.code_package.get("sha256", ""))
    flow_file = unpacked_flow_file(store, sha, spec.code_package.get("flow_file") or "", f"task {spec.pathspec}",
                                   f"{spec.flow_name}/{spec.run_id}", os.path.basename(spec.flow_file))
    target = os.path.join(code_cache_dir(), sha)
    if target not in sys.path:
        sys.path.insert(0, target)
    return flow_file


def unpacked_flow_file(store: Any, sha: str, relative: str, what: str, within: str | None = None,
                       fallback: str = "") -> str:
    """The flow file ``relative`` (default: the one the package's manifest names, else
    ``fallback``) of code package ``sha`` in ``store`` (an ArtifactStore), unpacked once into
    the code cache. ``what`` names the reader in errors (``task Flow/1/start/2``), ``within``
    the run a corrupt package is reported in."""
    if not _SHA256.fullmatch(sha):
        raise MfcError(f"{what}: code package id {sha[:80]!r} is not a sha256")
    target = os.path.join(code_cache_dir(), sha)
    if not os.path.isfile(os.path.join(target, MARKER)):
        _unpack(store, sha, target, within)
    with open(os.path.join(target, MARKER)) as fh:
        relative = relative or fh.read().strip() or fallback
    flow_file = os.path.normpath(os.path.join(target, relative))
    if os.path.commonpath([flow_file, os.path.normpath(target)]) != os.path.normpath(target):
        raise MfcError(f"{what}: flow file {relative!r} lies outside its code package")
    return flow_file


def _unpack(store: Any, sha: str, target: str, within: str | None) -> None:
    """Fetch, check and unpack the package into ``target``, atomically (see the module docstring)."""
    from mfc.exceptions import CorruptArtifact
    from mfc.packager import unpack_package

    try:
        package = store.load_bytes(sha)
    except CorruptArtifact as exc:
        raise exc.within(within, what="code package") from None
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    private = tempfile.mkdtemp(prefix=f".{os.path.basename(target)[:16]}-", dir=parent)
    try:
        manifest = unpack_package(package, private, expected_sha256=sha)
        with open(os.path.join(private, MARKER), "w") as fh:
            fh.write(manifest.get("flow_file", ""))
        try:
            os.rename(private, target)
        except OSError:
            if not os.path.isfile(os.path.join(target, MARKER)):
                if os.path.isdir(target):  # an unpack that died before this scheme: replace it
                    shutil.rmtree(target, ignore_errors=True)
                os.rename(private, target)
            # else another task unpacked the same package first: use theirs
    finally:
        if os.path.isdir(private):
            shutil.rmtree(private, ignore_errors=True)

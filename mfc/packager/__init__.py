"""Code packages: a flow's project tree as a deterministic tar.gz whose id is its sha256.

``build_package`` snapshots the project (see :mod:`mfc.packager.tree` for what is selected),
``unpack_package`` restores it safely in a task, ``read_manifest`` lists what a package holds.
Only the unpacking side is imported eagerly: a task that fetches its code should not pay for the
packaging side's imports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfc.exceptions import MfcError
from mfc.exceptions import warn as warn_user
from mfc.packager.unpack import PackageError, read_manifest, unpack_package

__all__ = ["CodePackage", "PackageError", "build_package", "find_project_root", "read_manifest",
           "unpack_package"]

DEFAULT_MAX_BYTES = 200 * 1024**2
DEFAULT_WARN_BYTES = 50 * 1024**2


@dataclass
class CodePackage:
    """A built code package: the tar.gz bytes, their sha256 (the package id) and its manifest."""

    sha256: str
    data: bytes
    manifest: dict[str, Any]
    root: Path

    @property
    def size(self) -> int:
        """Size of the tar.gz in bytes."""
        return len(self.data)


def format_size(size: int) -> str:
    """``1536`` -> ``"1.5 KB"`` (binary units)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def find_project_root(flow_file: str | Path) -> Path:
    """The flow's project root; see :func:`mfc.packager.tree.find_project_root`."""
    from mfc.packager.tree import find_project_root as find

    return find(flow_file)


def build_package(flow_file: str | Path, suffixes: Sequence[str] = (".py",), root: Path | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES, warn_bytes: int = DEFAULT_WARN_BYTES,
                  warn: Callable[[str], None] | None = None) -> CodePackage:
    """Package the project holding ``flow_file``.

    ``root`` defaults to :func:`find_project_root`. Files are selected by ``suffixes``, the ignore
    files and the built-in exclusions; the flow file is always included. When the files total
    more than ``warn_bytes``, ``warn`` (default: print to stderr) is called with the largest
    files; above ``max_bytes`` an :class:`MfcError` is raised before anything is read.
    """
    import io

    from mfc.packager.manifest import MANIFEST_NAME, build_manifest, encode_manifest, git_info
    from mfc.packager.tarball import sha256_hex, write_tar_gz
    from mfc.packager.tree import find_project_root as find
    from mfc.packager.tree import select_files

    flow = Path(flow_file)
    if not flow.is_file():
        raise MfcError(f"flow file {flow} not found", hint="pass the path of the flow's .py file")
    root_path = Path(root) if root is not None else find(flow)
    selection = select_files(root_path, flow, suffixes)
    warn = warn or warn_user
    for rel_dir in selection.unreadable_dirs:
        warn(f"skipped unreadable directory {rel_dir} in {selection.root}")
    sizes = [(item.path, item.size) for item in selection.files]
    _check_size(sizes, selection.root, max_bytes, warn_bytes, warn)

    members: list[tuple[str, bytes, bool]] = []
    for item in selection.files:
        try:
            with open(item.abspath, "rb") as handle:
                members.append((item.path, handle.read(), item.executable))
        except OSError as exc:
            raise MfcError(f"cannot read {item.abspath}: {exc.strerror}",
                           hint=f"fix its permissions or exclude it in {selection.root}/.mfcignore") from None
    if sum(len(content) for _, content, _ in members) > max_bytes:  # files grew while reading
        _check_size([(path, len(content)) for path, content, _ in members], selection.root, max_bytes,
                    max_bytes, warn)
    manifest = build_manifest(((path, len(content), sha256_hex(content)) for path, content, _ in members),
                              selection.flow_path, git_info(selection.root))
    buffer = io.BytesIO()
    write_tar_gz([(MANIFEST_NAME, encode_manifest(manifest), False), *members], buffer)
    data = buffer.getvalue()
    return CodePackage(sha256=sha256_hex(data), data=data, manifest=manifest, root=selection.root)


def _check_size(sizes: list[tuple[str, int]], root: Path, max_bytes: int, warn_bytes: int,
                warn: Callable[[str], None]) -> None:
    total = sum(size for _, size in sizes)
    if total <= warn_bytes and total <= max_bytes:
        return
    largest = sorted(sizes, key=lambda item: (-item[1], item[0]))[:5]
    listing = ", ".join(f"{path} ({format_size(size)})" for path, size in largest)
    if total > max_bytes:
        raise MfcError(
            f"code package is {format_size(total)}, over the {format_size(max_bytes)} limit; largest files: {listing}",
            hint=f"exclude files with a .mfcignore in {root} (gitignore syntax) or narrow the package suffixes")
    warn(f"code package is {format_size(total)}; largest files: {listing}")

"""``run.code``: the code package a run executed, read back from the datastore."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


class RunCode:
    """A run's code package: ``.sha256``, ``.tarball`` (the tar.gz bytes), ``.manifest`` and
    ``.extract(dir)`` (checked against the sha256 and unpacked safely)."""

    def __init__(self, store: Any, info: dict[str, Any]) -> None:
        self._store = store
        self.info = dict(info)
        self.sha256: str = info["sha256"]
        self._tarball: bytes | None = None

    @property
    def tarball(self) -> bytes:
        """The package's tar.gz bytes."""
        if self._tarball is None:
            from mfc.exceptions import CorruptArtifact

            try:
                self._tarball = self._store.load_bytes(self.sha256)
            except CorruptArtifact as exc:
                raise exc.within(what="code package") from None
        return self._tarball

    @property
    def size(self) -> int:
        return len(self.tarball)

    @property
    def manifest(self) -> dict[str, Any]:
        """The package's manifest (files, their sizes and hashes, the flow file)."""
        from mfc.packager import read_manifest

        return read_manifest(self.tarball)

    def extract(self, dest: str | Path | None = None) -> Path:
        """Unpack into ``dest`` (default: a new temporary directory) and return that directory."""
        from mfc.packager import unpack_package

        target = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="mfc-code-"))
        target.mkdir(parents=True, exist_ok=True)
        unpack_package(self.tarball, target, expected_sha256=self.sha256)
        return target

    def __repr__(self) -> str:
        return f"<RunCode sha256={self.sha256[:12]}>"

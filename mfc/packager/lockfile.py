"""The dependency lock of a flow (:class:`EnvLock`): its text form, its id, ``mfc.lock`` and the cache.

A lock is a normalised text: a header line with the target Python, then sorted ``name==version``
lines with PEP 503 names::

    # python 3.11
    idna==3.10
    six==1.17.0

Its id is the sha256 of that text, so the same pins give the same id on any machine. ``mfc.lock``
(written by ``mfc lock --write``) adds comment lines above it, among them the hash of the inputs
it was resolved from; they are not part of the id. Resolutions are cached by input hash under
:func:`cache_dir` so an unchanged flow is never resolved twice.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mfc.exceptions import MfcError

LOCK_FILE_NAME = "mfc.lock"
FORMAT_VERSION = 1
_INPUTS_PREFIX = "# inputs: "
_PYTHON_PREFIX = "# python "
_PIN = re.compile(r"^([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)==([^\s=;]+)$")


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def cache_dir() -> Path:
    """mfc's per-user cache: ``$MFC_CACHE_DIR``, else ``$XDG_CACHE_HOME/mfc``, else ``~/.cache/mfc``."""
    explicit = os.environ.get("MFC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "mfc" if xdg else Path.home() / ".cache" / "mfc"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@dataclass(frozen=True)
class EnvLock:
    """Exact pins for one target Python. ``pins`` are sorted ``(canonical name, version)`` pairs;
    ``inputs_hash`` is the hash of what was resolved (see :func:`mfc.packager.deps.inputs_hash`),
    empty when unknown."""

    python: str
    pins: tuple[tuple[str, str], ...]
    inputs_hash: str = ""

    @classmethod
    def create(cls, python: str, pins: dict[str, str] | list[tuple[str, str]], inputs_hash: str = "") -> EnvLock:
        """A lock from unsorted pins; names are normalised."""
        items = pins.items() if isinstance(pins, dict) else pins
        return cls(python, tuple(sorted((canonical_name(n), v) for n, v in items)), inputs_hash)

    @property
    def text(self) -> str:
        """The normalised text whose sha256 is :attr:`id`."""
        lines = [f"{_PYTHON_PREFIX}{self.python}", *(f"{name}=={version}" for name, version in self.pins)]
        return "\n".join(lines) + "\n"

    @property
    def id(self) -> str:
        """sha256 (hex) of :attr:`text`."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def requirements(self) -> str:
        """The pins as a pip requirements file (no header)."""
        return "".join(f"{name}=={version}\n" for name, version in self.pins)

    def file_text(self) -> str:
        """What ``mfc.lock`` holds: comments (with the inputs hash), then :attr:`text`."""
        return (f"# {LOCK_FILE_NAME}: exact dependencies of this project's flows, written by `mfc lock --write`.\n"
                f"# Do not edit; run `mfc lock --write FLOW` again after changing the dependencies.\n"
                f"{_INPUTS_PREFIX}{self.inputs_hash}\n{self.text}")

    def to_json(self) -> dict[str, object]:
        """A JSON-able summary (``mfc lock --json``)."""
        return {"id": self.id, "python": self.python, "inputs_hash": self.inputs_hash,
                "pins": [{"name": n, "version": v} for n, v in self.pins]}


def parse_lock(text: str, source: str = LOCK_FILE_NAME) -> EnvLock:
    """Read a lock written by :meth:`EnvLock.file_text` (or :attr:`EnvLock.text`); ``source`` names
    it in errors."""
    python = ""
    inputs = ""
    pins: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith(_INPUTS_PREFIX):
            inputs = line[len(_INPUTS_PREFIX):].strip()
        elif line.startswith(_PYTHON_PREFIX):
            python = line[len(_PYTHON_PREFIX):].strip()
        elif line and not line.startswith("#"):
            match = _PIN.match(line)
            if not match:
                raise MfcError(f"{source}:{number}: not a `name==version` pin: {line!r}",
                               hint="regenerate it with `mfc lock --write FLOW`")
            pins.append((match.group(1), match.group(2)))
    if not python:
        raise MfcError(f"{source}: no `# python X.Y` header line", hint="regenerate it with `mfc lock --write FLOW`")
    return EnvLock.create(python, pins, inputs)


def read_lock_file(path: Path) -> EnvLock | None:
    """The lock in ``path``, or None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MfcError(f"cannot read {path}: {exc.strerror}") from None
    return parse_lock(text, str(path))


class LockCache:
    """Resolved locks by inputs hash: ``<cache_dir>/locks/<hash>.lock``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir() / "locks"

    def path(self, inputs_hash: str) -> Path:
        return self.root / f"{inputs_hash}.lock"

    def get(self, inputs_hash: str) -> EnvLock | None:
        """The cached lock for ``inputs_hash``; a damaged entry counts as missing."""
        try:
            lock = read_lock_file(self.path(inputs_hash))
        except MfcError:
            return None
        return lock if lock is not None and lock.inputs_hash == inputs_hash else None

    def put(self, lock: EnvLock) -> None:
        """Store ``lock`` under its inputs hash (best effort: a read-only cache only costs time)."""
        try:
            write_atomic(self.path(lock.inputs_hash), lock.file_text())
        except OSError:
            pass

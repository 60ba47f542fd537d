"""Safe reading and unpacking of code packages.

The archive is read by a small streaming tar reader written for the format that
:mod:`mfc.packager.tarball` writes (ustar headers, PAX ``path``/``size`` records). Anything
else is refused: links, devices, FIFOs, absolute paths, ``..``, duplicate paths, files missing
from or differing with the manifest, and archives larger than the limits. Decompression is
incremental and bounded, so a gzip bomb is stopped after at most the limit has been inflated,
never held in memory. Nothing is ever written outside the destination, and a failed unpack
removes what it wrote.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mfc.exceptions import MfcError
from mfc.packager.manifest import MANIFEST_NAME
from mfc.packager.tarball import BLOCK

CHUNK = 256 * 1024
MAX_PAX_BYTES = 64 * 1024
MAX_EXTENDED_HEADERS = 4  # PAX headers before one member
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# Per member: header, padding and PAX headers; bounds what a legitimate archive inflates to.
OVERHEAD_PER_MEMBER = 4 * BLOCK
MANIFEST_STREAM_LIMIT = MAX_MANIFEST_BYTES + (MAX_EXTENDED_HEADERS + 2) * (MAX_PAX_BYTES + BLOCK)

_LINK_TYPES = {b"1": "a hard link", b"2": "a symlink", b"K": "a link", b"L": "a GNU long name"}
_SPECIAL_TYPES = {b"3": "a character device", b"4": "a block device", b"6": "a FIFO", b"7": "a contiguous file"}
_REGULAR = (b"0", b"\0")


class PackageError(MfcError):
    """A code package is corrupt, hostile, too large, or not the expected one."""


@dataclass
class _Member:
    name: str
    type: bytes
    size: int
    mode: int


class _Inflater:
    """Decompresses a (possibly multi-member) gzip stream on demand, never more than ``limit``."""

    def __init__(self, source: BinaryIO, limit: int):
        self._source = source
        self.limit = limit
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""
        self._buffer = bytearray()
        self.total = 0
        head = source.read(2)
        if head != b"\x1f\x8b":
            raise PackageError("not a code package: the data is not gzip-compressed")
        self._pending = head

    def _fill(self) -> bool:
        """Inflate more output into the buffer; False at the end of the stream."""
        while True:
            if self._inflate.eof:
                data = self._inflate.unused_data or self._source.read(CHUNK)
                if not data:
                    return False
                self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                # An empty read still lets zlib flush output it holds back for lack of room.
                data = self._inflate.unconsumed_tail or self._pending or self._source.read(CHUNK)
                self._pending = b""
            try:
                out = self._inflate.decompress(data, CHUNK)
            except zlib.error as exc:
                raise PackageError(f"corrupt code package: {exc}") from None
            if not out and not data and not self._inflate.eof:
                raise PackageError("corrupt code package: the gzip stream is truncated")
            if out:
                self.total += len(out)
                if self.total > self.limit:
                    raise PackageError(f"code package inflates to more than {self.limit} bytes; refusing it")
                self._buffer += out
                return True

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the stream)."""
        while len(self._buffer) < size and self._fill():
            pass
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def read_exact(self, size: int) -> bytes:
        data = self.read(size)
        if len(data) != size:
            raise PackageError("corrupt code package: the tar stream is truncated")
        return data


def _number(field: bytes) -> int:
    if field[:1] == b"\x80":  # GNU base-256, used for large values
        return int.from_bytes(field[1:], "big")
    if field[:1] and field[0] & 0x80:
        raise PackageError("corrupt code package: negative number in a tar header")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if text.strip(b"01234567"):
        raise PackageError("corrupt code package: bad number in a tar header")
    return int(text, 8) if text else 0


def _cstring(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _parse_pax(data: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0 or not data[pos:space].isdigit():
            raise PackageError("corrupt code package: bad PAX header")
        end = pos + int(data[pos:space])
        if end > len(data) or end <= space or data[end - 1:end] != b"\n":
            raise PackageError("corrupt code package: bad PAX header")
        key, sep, value = data[space + 1:end - 1].partition(b"=")
        if not sep:
            raise PackageError("corrupt code package: bad PAX header")
        records[key.decode("utf-8", "replace")] = value
        pos = end
    return records


class _TarReader:
    """Iterates over the members of an uncompressed tar stream, refusing unsafe member types."""

    def __init__(self, stream: _Inflater, max_members: int):
        self._stream = stream
        self._max_members = max_members
        self._members = 0

    def _header(self) -> bytes | None:
        block = self._stream.read_exact(BLOCK)
        if block == b"\0" * BLOCK:
            return None
        stored = _number(block[148:156])
        unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
        if stored != unsigned:  # some old tars summed signed bytes
            signed = unsigned - 256 * sum(1 for byte in block[:148] + block[156:] if byte & 0x80)
            if stored != signed:
                raise PackageError("corrupt code package: bad tar header checksum")
        return block

    def next(self) -> _Member | None:
        """The next member's header, or None at the end; its data must be read before the next."""
        pax: dict[str, bytes] = {}
        for _ in range(MAX_EXTENDED_HEADERS + 1):
            block = self._header()
            if block is None:
                return None
            typeflag = block[156:157]
            size = _number(block[124:136])
            if typeflag in (b"x", b"g"):
                if size > MAX_PAX_BYTES:
                    raise PackageError(f"code package has a {size}-byte PAX header; refusing it")
                data = self._stream.read_exact(size + (-size % BLOCK))[:size]
                if typeflag == b"x":
                    pax.update(_parse_pax(data))
                continue
            break
        else:
            raise PackageError("corrupt code package: too many PAX headers in a row")
        self._members += 1
        if self._members > self._max_members:
            raise PackageError(f"code package has more than {self._max_members} members; refusing it")
        raw_name = _cstring(block[0:100])
        if block[257:263] == b"ustar\0" and block[345:346] != b"\0":  # POSIX prefix; GNU uses it otherwise
            raw_name = _cstring(block[345:500]) + b"/" + raw_name
        raw_name = pax.get("path", raw_name)
        if "size" in pax:
            if not pax["size"].isdigit():
                raise PackageError("corrupt code package: bad PAX size")
            size = int(pax["size"])
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise PackageError(f"code package member {raw_name!r} has a name that is not UTF-8") from None
        if typeflag in _LINK_TYPES:
            raise PackageError(f"code package member {name!r} is {_LINK_TYPES[typeflag]}; packages never hold links")
        if typeflag in _SPECIAL_TYPES:
            raise PackageError(f"code package member {name!r} is {_SPECIAL_TYPES[typeflag]}; refusing it")
        if typeflag not in _REGULAR and typeflag != b"5":
            raise PackageError(f"code package member {name!r} has unsupported type {typeflag!r}")
        return _Member(name, b"5" if typeflag == b"5" else b"0", size, _number(block[100:108]))

    def data(self, size: int) -> Iterator[bytes]:
        """Yield the member's ``size`` bytes of data in chunks, then skip its padding."""
        left = size
        while left:
            chunk = self._stream.read(min(left, CHUNK))
            if not chunk:
                raise PackageError("corrupt code package: the tar stream is truncated")
            left -= len(chunk)
            yield chunk
        self._stream.read_exact(-size % BLOCK)


def safe_relpath(name: str) -> str:
    """Normalize a member name to a relative POSIX path, refusing absolute paths and ``..``."""
    if not name or "\0" in name:
        raise PackageError(f"code package member {name!r} has an empty or invalid name")
    if name.startswith("/"):
        raise PackageError(f"code package member {name!r} has an absolute path; refusing it")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PackageError(f"code package member {name!r} has a '..' component; refusing it")
    if not parts:
        raise PackageError(f"code package member {name!r} has an empty path")
    return "/".join(parts)


class _SafeWriter:
    """Creates files under ``base`` only, through real directories (never through symlinks)."""

    def __init__(self, base: str):
        self.base = base
        self._dirs_ok = {""}
        self._files: list[str] = []
        self._created_dirs: list[str] = []

    def ensure_dir(self, rel: str) -> None:
        missing = []
        while rel not in self._dirs_ok:
            missing.append(rel)
            rel = rel.rpartition("/")[0]
        for rel_dir in reversed(missing):
            full = os.path.join(self.base, rel_dir)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                os.mkdir(full, 0o755)
                self._created_dirs.append(full)
            else:
                if not stat.S_ISDIR(st.st_mode):
                    raise PackageError(f"cannot unpack {rel_dir}/: {full} exists and is not a directory",
                                       hint="unpack into an empty directory")
            self._dirs_ok.add(rel_dir)

    def write(self, rel: str, chunks: Iterator[bytes], mode: int) -> tuple[int, str]:
        """Write a file; return its size and sha256."""
        self.ensure_dir(rel.rpartition("/")[0])
        full = os.path.join(self.base, rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(st.st_mode):
                raise PackageError(f"cannot unpack {rel}: {full} is a directory", hint="unpack into an empty directory")
            os.unlink(full)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(full, flags, 0o600)
        self._files.append(full)
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            else:  # pragma: no cover - Windows
                os.chmod(full, mode)
        return size, digest.hexdigest()

    def rollback(self) -> None:
        """Remove what this writer created."""
        for path in reversed(self._files):
            try:
                os.unlink(path)
            except OSError:
                pass
        for path in reversed(self._created_dirs):
            try:
                os.rmdir(path)
            except OSError:
                pass


@contextmanager
def _open_source(data: bytes | bytearray | memoryview | str | Path) -> Iterator[BinaryIO]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield io.BytesIO(data)
        return
    try:
        handle = open(data, "rb")
    except OSError as exc:
        raise PackageError(f"cannot read code package {data}: {exc.strerror}") from None
    with handle:
        yield handle


def _check_sha256(source: BinaryIO, expected: str) -> None:
    digest = hashlib.sha256()
    for chunk in iter(lambda: source.read(1024 * 1024), b""):
        digest.update(chunk)
    actual = digest.hexdigest()
    if actual != expected.strip().lower():
        raise PackageError(f"code package sha256 mismatch: expected {expected}, got {actual}",
                           hint="the package is corrupt or not the one the run recorded")
    source.seek(0)


def _validate_manifest(manifest: Any) -> dict[str, dict[str, Any]]:
    """Map path -> file entry; refuse a malformed manifest."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        raise PackageError("corrupt code package: the manifest has no file list")
    entries: dict[str, dict[str, Any]] = {}
    for entry in files:
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)):
            raise PackageError(f"corrupt code package: bad manifest entry {entry!r}")
        entries[safe_relpath(entry["path"])] = entry
    return entries


def _read_manifest_member(reader: _TarReader) -> tuple[dict[str, Any], bytes]:
    member = reader.next()
    if member is None or member.type != b"0" or safe_relpath(member.name) != MANIFEST_NAME:
        raise PackageError(f"not a code package: its first member is not {MANIFEST_NAME}")
    if member.size > MAX_MANIFEST_BYTES:
        raise PackageError(f"code package manifest is {member.size} bytes; refusing it")
    raw = b"".join(reader.data(member.size))
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise PackageError(f"corrupt code package: the manifest is not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise PackageError("corrupt code package: the manifest is not a JSON object")
    return manifest, raw


def read_manifest(data: bytes | str | Path) -> dict[str, Any]:
    """The manifest of a code package (bytes or a file path); reads only the first member."""
    with _open_source(data) as source:
        reader = _TarReader(_Inflater(source, MANIFEST_STREAM_LIMIT), 1)
        return _read_manifest_member(reader)[0]


def unpack_package(data: bytes | str | Path, dest: str | Path, expected_sha256: str | None = None,
                   max_bytes: int = 1024**3, max_members: int = 100_000) -> dict[str, Any]:
    """Unpack a code package (bytes or a file path) into ``dest``; return its manifest.

    ``expected_sha256``, when given, is checked before anything is inflated. Every file is checked
    against the manifest (size and sha256), the files' total size must stay within ``max_bytes``
    and the member count within ``max_members``. Raises :class:`PackageError` for a corrupt or
    hostile archive; on failure, the files this call wrote are removed again.
    """
    dest_path = Path(dest)
    with _open_source(data) as source:
        if expected_sha256:
            _check_sha256(source, expected_sha256)
        inflater = _Inflater(source, MANIFEST_STREAM_LIMIT)
        reader = _TarReader(inflater, max_members)
        manifest, raw = _read_manifest_member(reader)
        # Headers are not trusted alone: the tar stream itself may not inflate past what the
        # limits allow for file data plus ordinary tar overhead.
        inflater.limit = inflater.total + max_bytes + OVERHEAD_PER_MEMBER * (max_members + 2)
        expected = _validate_manifest(manifest)
        try:
            dest_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PackageError(f"cannot create {dest_path}: {exc.strerror}") from None
        writer = _SafeWriter(os.path.realpath(dest_path))
        try:
            _unpack_members(reader, writer, expected, max_bytes)
            writer.write(MANIFEST_NAME, iter((raw,)), 0o644)
        except OSError as exc:
            writer.rollback()
            raise PackageError(f"cannot unpack code package into {dest_path}: {exc}") from None
        except BaseException:
            writer.rollback()
            raise
    return manifest


def _unpack_members(reader: _TarReader, writer: _SafeWriter, expected: dict[str, dict[str, Any]],
                    max_bytes: int) -> None:
    seen: set[str] = set()
    total = 0
    while (member := reader.next()) is not None:
        path = safe_relpath(member.name)
        if member.type == b"5":
            writer.ensure_dir(path)
            continue
        if path in seen or path == MANIFEST_NAME:
            raise PackageError(f"code package member {path!r} appears twice; refusing it")
        seen.add(path)
        entry = expected.get(path)
        if entry is None:
            raise PackageError(f"code package member {path!r} is not in its manifest; refusing it")
        total += member.size
        if total > max_bytes:
            raise PackageError(f"code package holds more than {max_bytes} bytes of files; refusing it")
        if member.size != entry["size"]:
            raise PackageError(f"code package member {path!r} is {member.size} bytes, "
                               f"its manifest says {entry['size']}")
        size, sha = writer.write(path, reader.data(member.size), 0o755 if member.mode & 0o100 else 0o644)
        if sha != entry["sha256"] or size != member.size:
            raise PackageError(f"code package member {path!r} does not match its manifest sha256")
    missing = sorted(set(expected) - seen)
    if missing:
        raise PackageError(f"code package is missing {len(missing)} file(s) its manifest lists, e.g. {missing[0]!r}")

"""Deterministic tar.gz writing.

The bytes depend only on the members' paths, contents and executable bits. Headers are written
here rather than by :mod:`tarfile`, so that they cannot change with the Python version:

* POSIX ustar headers; a PAX ``path`` record only for paths that are not ASCII or too long;
* regular files only (directories are implicit), mode 0o644 or 0o755, uid/gid 0, empty owner
  names, mtime fixed at 1980-01-01;
* gzip with mtime 0, no file name, OS byte 255 (unknown), compression level 1.

The compressed bytes are produced by the local zlib; every stock zlib gives the same output, but
a drop-in replacement with another deflate implementation (zlib-ng) may not.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable
from typing import BinaryIO

BLOCK = 512
RECORD = 20 * BLOCK
FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z; GNU tar warns about 1970 timestamps
GZIP_LEVEL = 1  # fastest; level 6 is 2.5x slower for 8% less on Python source
GZIP_HEADER = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
PAX_HEADER_NAME = b"././@PaxHeader"
USTAR_MAGIC = b"ustar\x0000"
MAX_USTAR_SIZE = 8**11 - 1


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def ustar_header(name: bytes, prefix: bytes, size: int, mode: int, typeflag: bytes) -> bytes:
    """One 512-byte ustar header with the fixed owner and time fields."""
    if size > MAX_USTAR_SIZE:
        raise ValueError(f"member of {size} bytes is too large for a ustar header")
    block = bytearray(b"".join((
        name.ljust(100, b"\0"),
        _octal(mode, 8), _octal(0, 8), _octal(0, 8), _octal(size, 12), _octal(FIXED_MTIME, 12),
        b" " * 8,  # checksum, computed below over the header with this field as spaces
        typeflag,
        b"\0" * 100,  # linkname
        USTAR_MAGIC,
        b"\0" * 32, b"\0" * 32,  # uname, gname
        _octal(0, 8), _octal(0, 8),  # devmajor, devminor
        prefix.ljust(155, b"\0"),
        b"\0" * 12,
    )))
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _split_ustar(path: bytes) -> tuple[bytes, bytes] | None:
    """(name, prefix) when ``path`` fits the ustar fields, else None."""
    if len(path) <= 100:
        return path, b""
    for index, byte in enumerate(path):
        if index > 155:
            break
        if byte == 0x2F and len(path) - index - 1 <= 100 and index + 1 < len(path):
            return path[index + 1:], path[:index]
    return None


def pax_record(key: str, value: bytes) -> bytes:
    """One ``"<length> key=value\\n"`` record; the length counts itself."""
    body = b" " + key.encode("ascii") + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode("ascii") + body


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def member_headers(path: str, size: int, mode: int) -> bytes:
    """The header block(s) for one regular file: ustar, preceded by a PAX header if needed."""
    raw = path.encode("utf-8")
    split = _split_ustar(raw) if raw.isascii() else None
    if split is not None:
        return ustar_header(split[0], split[1], size, mode, b"0")
    records = pax_record("path", raw)
    fallback = path.encode("ascii", "replace")[-100:]
    return (ustar_header(PAX_HEADER_NAME, b"", len(records), 0o644, b"x") + records + _padding(len(records))
            + ustar_header(fallback, b"", size, mode, b"0"))


class GzipWriter:
    """Writes one gzip member with a fixed header to ``out``.

    Small writes are gathered into 1 MiB batches: zlib is much faster on large inputs, and the
    batching depends only on the data, so the output stays deterministic.
    """

    BATCH = 1024 * 1024

    def __init__(self, out: BinaryIO, level: int = GZIP_LEVEL):
        self._out = out
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY)
        self._crc = 0
        self._size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        out.write(GZIP_HEADER)

    def write(self, data: bytes) -> None:
        self._size += len(data)
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self.BATCH:
            self._compress_pending()

    def _compress_pending(self) -> None:
        batch = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        self._crc = zlib.crc32(batch, self._crc)
        self._out.write(self._deflate.compress(batch))

    @property
    def size(self) -> int:
        """Uncompressed bytes written so far."""
        return self._size

    def close(self) -> None:
        self._compress_pending()
        self._out.write(self._deflate.flush())
        self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))


def write_tar_gz(members: Iterable[tuple[str, bytes, bool]], out: BinaryIO) -> None:
    """Write ``members`` (path, content, executable) in the given order as a tar.gz to ``out``."""
    gz = GzipWriter(out)
    seen: set[str] = set()
    for path, content, executable in members:
        if path in seen:
            raise ValueError(f"duplicate archive member {path}")
        seen.add(path)
        gz.write(member_headers(path, len(content), 0o755 if executable else 0o644))
        gz.write(content)
        gz.write(_padding(len(content)))
    gz.write(b"\0" * (2 * BLOCK))  # end-of-archive marker
    gz.write(b"\0" * (-gz.size % RECORD))
    gz.close()


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()

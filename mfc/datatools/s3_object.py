"""What :class:`mfc.datatools.s3.S3` hands back: one object (or a missing key) with its url,
key, size and, once downloaded, a local file holding its bytes."""

from __future__ import annotations

from typing import Any


class S3Object:
    """One S3 key as Metaflow's ``S3Object``: ``url`` (``s3://bucket/key``), ``key`` (relative to
    the client's root when it has one), ``path`` (local file, when downloaded), ``blob``/``text``
    (the bytes, read from ``path``), ``size``, ``exists``, ``content_type`` and ``metadata``."""

    def __init__(self, url: str, key: str, *, path: str | None = None, size: int | None = None,
                 exists: bool = True, content_type: str | None = None,
                 metadata: dict[str, str] | None = None, last_modified: Any = None) -> None:
        self._url = url
        self._key = key
        self._path = path
        self._size = size
        self._exists = exists
        self._content_type = content_type
        self._metadata = metadata
        self._last_modified = last_modified

    @property
    def url(self) -> str:
        return self._url

    @property
    def key(self) -> str:
        return self._key

    @property
    def prefix(self) -> str:
        """The url without the key (the root it was listed under)."""
        return self._url[: len(self._url) - len(self._key)] if self._url.endswith(self._key) else self._url

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def exists(self) -> bool:
        return self._exists

    @property
    def downloaded(self) -> bool:
        return self._path is not None

    @property
    def size(self) -> int | None:
        return self._size

    @property
    def content_type(self) -> str | None:
        return self._content_type

    @property
    def metadata(self) -> dict[str, str] | None:
        return self._metadata

    @property
    def last_modified(self) -> Any:
        return self._last_modified

    @property
    def has_info(self) -> bool:
        return self._content_type is not None or self._metadata is not None

    @property
    def blob(self) -> bytes | None:
        """The object's bytes (None when it was not downloaded)."""
        if self._path is None:
            return None
        with open(self._path, "rb") as fh:
            return fh.read()

    @property
    def text(self) -> str | None:
        """The object's bytes decoded as UTF-8 (None when it was not downloaded)."""
        blob = self.blob
        return None if blob is None else blob.decode("utf-8")

    def __repr__(self) -> str:
        state = "downloaded" if self.downloaded else ("missing" if not self._exists else "remote")
        return f"<S3Object {self._url} ({state}, size={self._size})>"

"""``S3``: Metaflow's S3 client API on mfc's S3 store (parallel, retried transfers; mfc's
configured endpoint and credentials). Downloads land in a temporary directory that ``close()``
(or leaving ``with S3(...) as s3:``) removes."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from typing import Any

from mfc.datatools.s3_object import S3Object
from mfc.exceptions import MfcError
from mfc.stores.s3_transfer import ObjectInfo, S3Error

__all__ = ["S3", "S3NotFound", "MetaflowS3NotFound"]


class S3NotFound(S3Error):
    """A key that is not in S3 (Metaflow's ``MetaflowS3NotFound``)."""


MetaflowS3NotFound = S3NotFound


def _split(url: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``."""
    from mfc.stores.s3_transfer import parse_root

    try:
        bucket, _ = parse_root(url)
    except MfcError as exc:
        raise S3Error(f"S3: {url!r} is not an s3://bucket/key URL", "write s3://BUCKET/KEY") from exc
    return bucket, url[len("s3://") + len(bucket):].lstrip("/")


def _put_pair(store: Any, item: tuple[str, bytes]) -> None:
    store.put_bytes(*item)


def run_root(run: Any, datastore_root: str | None) -> str:
    """Metaflow's root for ``S3(run=...)``: ``<datastore root>/data/<flow>/<run id>`` (``run``:
    a FlowSpec in a running step, or a client Run; in a step the task's datastore root wins)."""
    from mfc.current import current

    pathspec = getattr(run, "pathspec", None)
    if isinstance(pathspec, str) and pathspec.count("/") == 1:
        flow, run_id = pathspec.split("/")
    elif current.is_running_flow:
        flow, run_id = str(current.flow_name), str(current.run_id)
        datastore_root = current._get("datastore_root") or datastore_root  # the task's own store
    else:
        raise S3Error("S3(run=...) needs a FlowSpec inside a running step or a client Run",
                      "pass run=self in a step, or s3root='s3://BUCKET/PREFIX'")
    if not datastore_root or not datastore_root.startswith("s3://"):
        raise S3Error(f"S3(run=...) needs an S3 datastore, but the datastore root is {datastore_root!r}",
                      "run with --datastore s3 --datastore-root s3://BUCKET/PREFIX, or use S3(s3root=...)")
    return f"{datastore_root.rstrip('/')}/data/{flow}/{run_id}"


class S3:
    """Metaflow's ``S3``: ``S3(s3root='s3://bucket/prefix')``, ``S3(bucket=..., prefix=...)``,
    ``S3(run=self)`` (a prefix of the run under the S3 datastore) or ``S3()`` (full urls only).
    Keys given to the methods are relative to that root, or full ``s3://`` urls."""

    def __init__(self, tmproot: str | None = None, bucket: str | None = None, prefix: str | None = None,
                 run: Any = None, s3root: str | None = None, config: Any = None) -> None:
        from mfc.aws import s3_settings
        from mfc.config import Config

        self._config = config or Config()
        if run is not None:
            s3root = run_root(run, self._config["datastore_root"])
        elif bucket is not None:
            s3root = f"s3://{bucket}/{(prefix or '').strip('/')}"
        self._root: str | None = None
        if s3root is not None:
            _split(s3root.rstrip("/") + "/")
            self._root = s3root.rstrip("/")
        self._settings = s3_settings(self._config)
        self._stores: dict[str, Any] = {}
        self._tmpdir: str | None = tempfile.mkdtemp(prefix="metaflow.s3.", dir=tmproot)

    # -- context ----------------------------------------------------------------------------------
    def __enter__(self) -> S3:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Remove the downloads' temporary directory and stop the transfer threads."""
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        for store in self._stores.values():
            store.close()
        self._stores.clear()

    @property
    def tmpdir(self) -> str | None:
        return self._tmpdir

    # -- plumbing ---------------------------------------------------------------------------------
    def _store(self, bucket: str) -> Any:
        if bucket not in self._stores:
            from mfc.stores.s3 import S3BlobStore

            self._stores[bucket] = S3BlobStore(f"s3://{bucket}", settings=self._settings, verify_data=False)
        return self._stores[bucket]

    def _url(self, key: str | None) -> str:
        if key is not None and key.startswith("s3://"):
            return key
        if self._root is None:
            raise S3Error(f"S3(): key {key!r} needs a full s3:// url (this client has no s3root)",
                          "pass s3root=, bucket=/prefix= or run= to S3(), or give s3://BUCKET/KEY")
        return f"{self._root}/{key}" if key else self._root

    def _relative(self, url: str) -> str:
        if self._root and url.startswith(self._root + "/"):
            return url[len(self._root) + 1:]
        return url

    def _directory(self) -> str:
        if self._tmpdir is None:
            raise S3Error("S3: this client is closed", "use it inside its `with S3(...) as s3:` block")
        return self._tmpdir

    def _pool(self, urls: list[str]) -> Any:
        """The store whose thread pool runs a batch over several urls (any bucket's will do)."""
        return self._store(_split(urls[0])[0])

    def _object(self, url: str, info: ObjectInfo, path: str | None = None, info_known: bool = True) -> S3Object:
        """The S3Object of a found key; ``info_known`` False: leave out content type and metadata."""
        if not info_known:
            return S3Object(url, self._relative(url), path=path, size=info.size, last_modified=info.last_modified)
        return S3Object(url, self._relative(url), path=path, size=info.size, content_type=info.content_type,
                        metadata=info.metadata or {}, last_modified=info.last_modified)

    def _missing(self, url: str, return_missing: bool) -> S3Object:
        if not return_missing:
            raise S3NotFound(f"S3 key not found: {url}", "pass return_missing=True to get missing keys back")
        return S3Object(url, self._relative(url), exists=False)

    def _group(self, pairs: list[tuple[str, str, Any]]) -> dict[str, dict[str, Any]]:
        """{bucket: {object key: value}} of (key, url, value) triples."""
        groups: dict[str, dict[str, Any]] = {}
        for _, url, value in pairs:
            bucket, key = _split(url)
            groups.setdefault(bucket, {})[key] = value
        return groups

    def _spool(self, path: str) -> str:
        """A link to (or copy of) ``path`` in the temp dir, for the store's put_file to consume."""
        assert self._tmpdir is not None
        spool = os.path.join(self._tmpdir, uuid.uuid4().hex)
        try:
            os.link(path, spool)
        except OSError:
            shutil.copyfile(path, spool)
        return spool

    def _by_bucket(self, urls: list[str]) -> dict[str, list[tuple[str, str]]]:
        groups: dict[str, list[tuple[str, str]]] = {}
        for url in urls:
            bucket, key = _split(url)
            groups.setdefault(bucket, []).append((url, key))
        return groups

    # -- reads ------------------------------------------------------------------------------------
    def get(self, key: str | None = None, return_missing: bool = False, return_info: bool = True) -> S3Object:
        """Download one key; :class:`S3NotFound` when it is missing (unless ``return_missing``)."""
        return self.get_many([self._url(key)], return_missing=return_missing, return_info=return_info)[0]

    def get_many(self, keys: Iterable[str], return_missing: bool = False, return_info: bool = True) -> list[S3Object]:
        """Download several keys in parallel, in the order given, each streamed into a file of the
        temp dir. ``return_info``: keep the content type and metadata (from the GET itself)."""
        urls = [self._url(key) for key in keys]
        directory = self._directory()
        found: dict[str, tuple[str, ObjectInfo]] = {}
        for bucket, pairs in self._by_bucket(urls).items():
            got = self._store(bucket).get_files([key for _, key in pairs], directory)
            found.update({url: got[key] for url, key in pairs if key in got})
        return [self._object(url, found[url][1], found[url][0], return_info) if url in found
                else self._missing(url, return_missing) for url in urls]

    def get_recursive(self, keys: Iterable[str], return_info: bool = False) -> list[S3Object]:
        """Download every object under each of the prefixes ``keys``."""
        return self.get_many([obj.url for obj in self.list_recursive(keys)], return_info=return_info)

    def get_all(self, return_info: bool = False) -> list[S3Object]:
        """Download every object under this client's root."""
        if self._root is None:
            raise S3Error("S3().get_all() needs a root", "pass s3root=, bucket=/prefix= or run= to S3()")
        return self.get_recursive([""], return_info=return_info)

    def info(self, key: str | None = None, return_missing: bool = False) -> S3Object:
        """Size, content type and metadata of one key (one HEAD), without downloading it."""
        return self.info_many([self._url(key)], return_missing=return_missing)[0]

    def info_many(self, keys: Iterable[str], return_missing: bool = False) -> list[S3Object]:
        """:meth:`info` of several keys, in parallel."""
        urls = [self._url(key) for key in keys]
        if not urls:
            return []

        def head(url: str) -> S3Object:
            bucket, key = _split(url)
            info = self._store(bucket).head(key)
            return self._missing(url, return_missing) if info is None else self._object(url, info)

        return self._pool(urls).map(head, urls)

    # -- listing ----------------------------------------------------------------------------------
    def _list(self, keys: Iterable[str] | None, recursive: bool) -> list[S3Object]:
        bases = [self._url(key) for key in (keys or [""])]

        def listing(base: str) -> list[S3Object]:
            bucket, prefix = _split(base)
            return [S3Object(url, self._relative(url), exists=False) if info.is_prefix
                    else self._object(url, info, info_known=False)
                    for info in self._store(bucket).list_objects(prefix, recursive)
                    for url in [f"s3://{bucket}/{info.key}"]]

        return [obj for found in self._pool(bases).map(listing, bases) for obj in found]

    def list_paths(self, keys: Iterable[str] | None = None) -> list[S3Object]:
        """The children (objects and prefixes, one level) of each key (default: the root);
        prefixes come back with ``exists`` False, as in Metaflow."""
        return self._list(keys, recursive=False)

    def list_recursive(self, keys: Iterable[str] | None = None) -> list[S3Object]:
        """Every object under each key (default: the root)."""
        return self._list(keys, recursive=True)

    # -- writes -----------------------------------------------------------------------------------
    def put(self, key: str, obj: str | bytes, overwrite: bool = True) -> str:
        """Store ``obj`` (str as UTF-8, or bytes) at ``key``; the object's url."""
        return self.put_many([(key, obj)], overwrite=overwrite)[0][1]

    def put_many(self, key_objs: Iterable[tuple[str, str | bytes]], overwrite: bool = True) -> list[tuple[str, str]]:
        """Store several (key, str or bytes) pairs in parallel; [(key, url)]."""
        pairs = [(key, self._url(key), obj.encode("utf-8") if isinstance(obj, str) else bytes(obj))
                 for key, obj in key_objs]
        for bucket, data in self._group(pairs).items():
            store = self._store(bucket)
            if overwrite:
                store.map(functools.partial(_put_pair, store), data.items())
            else:
                store.put_new_many(data)
        return [(key, url) for key, url, _ in pairs]

    def put_files(self, key_paths: Iterable[tuple[str, str]], overwrite: bool = True) -> list[tuple[str, str]]:
        """Upload several local files in parallel (the files stay where they are); [(key, url)]."""
        self._directory()
        pairs = [(key, self._url(key), path) for key, path in key_paths]
        for key, _, path in pairs:
            if not os.path.isfile(path):
                raise S3Error(f"S3.put_files: {path!r} (for key {key!r}) is not a file")
        for bucket, files in self._group(pairs).items():
            store = self._store(bucket)
            if not overwrite:
                files = {key: path for key, path in files.items() if not store.exists(key)}
            store.put_files({key: self._spool(path) for key, path in files.items()})
        return [(key, url) for key, url, _ in pairs]

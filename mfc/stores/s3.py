"""Blob store on S3 or any S3-compatible endpoint (a datastore root ``s3://bucket/prefix``).

Every call is retried on throttling, 5xx answers and dropped connections (botocore's standard
retries, then tenacity with jittered exponential backoff around each operation); a missing
bucket, denied access or missing credentials is one clear :class:`S3Error` at once. Batch
operations run on a thread pool. Content-addressed objects (``<Flow>/data/xx/<sha>``) are
checked against their content address as they are read, and are known to be immutable: once seen, their
existence is answered from memory.

Writes are atomic as S3 makes them: an object appears whole or not at all (a multipart upload
only when it completes). ``put_new`` uses a conditional put (``If-None-Match: *``), so exactly one
of several concurrent writers wins; on endpoints without conditional writes it falls back to
HEAD then PUT, where two writers racing within one round trip may both "win" (the later write
replaces the earlier one). ``put_if`` is compare-and-swap the same way: ``If-Match`` on the ETag
that ``get_versioned`` read.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import botocore.exceptions as bex

from mfc.aws import is_local_endpoint
from mfc.stores.blob import BlobNotFound, BlobStore
from mfc.stores.integrity import content_check, is_content_addressed
from mfc.stores.s3_transfer import (
    BlobCorrupt,
    ObjectInfo,
    S3Error,
    S3Reader,
    describe,
    error_code,
    no_such_bucket,
    parse_root,
    ranged_body,
    read_exactly,
    retrying,
    staging_directory,
    whole,
)
from mfc.stores.settings import S3Settings

T = TypeVar("T")
MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # ranged-GET part size for large reads
UPLOAD_PART_SIZE = 16 * MiB
MULTIPART_THRESHOLD = 64 * MiB
LOCAL_MULTIPART_THRESHOLD = 4096 * MiB  # one PUT (up to S3's 5 GB) when the endpoint is this machine
READ_WINDOW = 8  # parts fetched ahead of a reader: memory ~ READ_WINDOW * PART_SIZE
UPLOAD_CONCURRENCY = 10
BACKGROUND_CHECK = 8 * MiB  # objects this large are hashed on a thread of their own as they stream
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
# A conditional write that lost: the object changed (412), or another conditional write to it
# was in flight (409), or the endpoint has none (answered once, then HEAD + PUT).
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NotImplemented", "501"})


@dataclass
class _State:
    """What one process holds: a client, thread pools and a transfer manager are never shared
    across fork (a child would write to its parent's sockets)."""

    pid: int
    client: Any
    pool: ThreadPoolExecutor
    parts: ThreadPoolExecutor
    transfer: Any = None


class S3BlobStore(BlobStore):
    """Blobs are objects under ``s3://bucket/prefix/``; keys map to object keys below the prefix.

    ``client`` is a boto3 S3 client to use instead of one built from ``settings`` (region,
    endpoint, timeouts and retries: :class:`~mfc.stores.settings.S3Settings`, which the caller
    resolves from its configuration; the default leaves region and endpoint to boto3).
    ``workers`` threads serve batch operations (default: the settings'); ``verify_data`` checks content-addressed objects
    against their sha256 on read; ``checksum`` is the checksum S3 verifies on upload (None:
    botocore's default); ``conditional_writes`` forces (True) or disables (False) ``If-None-Match``
    puts, None tries them and falls back when the endpoint answers NotImplemented.
    ``parallel_reads``: read content-addressed objects larger than a part as ranged GETs in
    parallel. Parallel transfers (those and multipart uploads above ``multipart_threshold``) beat
    the bandwidth limit of one connection to S3; when the endpoint is on this machine there is no
    such limit and the server shares our CPUs, so by default (None) it gets single streams.
    """

    def __init__(self, root: str, client: Any = None, *, settings: S3Settings | None = None,
                 workers: int | None = None, verify_data: bool = True, checksum: str | None = "CRC32",
                 part_size: int = PART_SIZE, multipart_threshold: int | None = None,
                 read_window: int = READ_WINDOW, retry_attempts: int | None = None,
                 retry_wait_max: float | None = None, conditional_writes: bool | None = None,
                 parallel_reads: bool | None = None) -> None:
        self.bucket, self.prefix = parse_root(root)
        self.root = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.settings = settings = settings or S3Settings()
        self.workers = max(1, workers or settings.workers)
        self.verify_data = verify_data
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        self.read_window = max(1, read_window)
        self.retry_attempts = max(1, retry_attempts or settings.retry_attempts)
        self.retry_wait_max = settings.retry_wait_max if retry_wait_max is None else retry_wait_max
        self.conditional_writes = conditional_writes
        self.parallel_reads = parallel_reads
        self._checksum = {"ChecksumAlgorithm": checksum} if checksum else {}
        self._given_client = client
        self._state_: _State | None = None
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._known: set[str] = set()  # content-addressed keys known to exist
        self._bucket_checked = False
        self._local: bool | None = None

    # -- plumbing ---------------------------------------------------------------------------------
    def _state(self) -> _State:
        state, pid = self._state_, os.getpid()
        if state is not None and state.pid == pid:
            return state
        if self._lock_pid != pid:  # forked: the parent's lock may have been held at fork time
            self._lock, self._lock_pid = threading.Lock(), pid
        with self._lock:
            if self._state_ is None or self._state_.pid != pid:
                self._state_ = _State(
                    pid, self._make_client(),
                    ThreadPoolExecutor(self.workers, thread_name_prefix="mfc-s3"),
                    ThreadPoolExecutor(self.read_window * 2, thread_name_prefix="mfc-s3-part"),
                )
            return self._state_

    def _make_client(self) -> Any:
        if self._given_client is not None:
            return self._given_client
        from botocore.config import Config as BotoConfig

        from mfc import aws

        settings = self.settings
        config = BotoConfig(
            retries={"mode": "standard", "total_max_attempts": settings.request_attempts},
            max_pool_connections=self.workers + self.read_window * 2 + UPLOAD_CONCURRENCY,
            connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout, tcp_keepalive=True,
            response_checksum_validation="when_required",  # asked per request (ChecksumMode)
        )
        try:
            return aws.session_client("s3", settings.region, settings.endpoint_url, config)
        except bex.BotoCoreError as exc:
            raise self._describe(exc, None) from exc

    @property
    def client(self) -> Any:
        """The boto3 S3 client of this process (created on first use)."""
        return self._state().client

    def _full(self, key: str) -> str:
        return self.prefix + key

    def _url(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{self._full(key)}" if key is not None else self.root

    def _describe(self, exc: BaseException, key: str | None) -> S3Error:
        endpoint = self._state_.client.meta.endpoint_url if self._state_ is not None else None
        return describe(exc, bucket=self.bucket, root=self.root, url=self._url(key), endpoint=endpoint)

    def call(self, key: str | None, fn: Callable[[], T], ok: frozenset[str] = frozenset()) -> T:
        """``fn()`` (a request through :attr:`client`) retried on transient failures (throttling,
        5xx, dropped connections), as every operation of this store is. ClientErrors whose code is
        in ``ok`` are raised as they are (with ``mfc_attempts`` set), every other failure as one
        S3Error naming ``key``'s url. (Codes, not statuses: a GET of a missing bucket answers 404
        too, with the code NoSuchBucket.)"""
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return fn()

        try:
            return retrying(self.retry_attempts, self.retry_wait_max)(attempt)
        except bex.ClientError as exc:
            if error_code(exc)[0] in ok:
                exc.mfc_attempts = attempts
                raise
            raise self._describe(exc, key) from exc
        except bex.BotoCoreError as exc:
            raise self._describe(exc, key) from exc

    def _check_bucket(self) -> None:
        """A HEAD answers a bare 404 for a missing bucket as for a missing key: ask once."""
        if self._bucket_checked:
            return
        s3 = self.client
        try:
            self.call(None, lambda: s3.head_bucket(Bucket=self.bucket), ok=_MISSING)
        except bex.ClientError as exc:
            raise self._describe(no_such_bucket(exc), None) from exc
        self._bucket_checked = True

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        """``fn`` over ``items`` on this store's thread pool (``workers`` threads, the one batch
        operations run on), results in order; the first failure is raised once every started call
        has ended. ``fn`` should make its requests through :meth:`call`."""
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        futures = [self._state().pool.submit(fn, item) for item in items]
        results: list[T] = []
        error: BaseException | None = None
        for future in futures:
            if error is not None:
                future.cancel()
                continue
            try:
                results.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                error = exc
        if error is not None:
            for future in futures:
                if not future.cancelled():
                    try:
                        future.exception()
                    except BaseException:  # noqa: BLE001 - cancelled while waiting
                        pass
            raise error
        return results

    # -- writes -----------------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> None:
        s3, full = self.client, self._full(key)
        self.call(key, lambda: s3.put_object(Bucket=self.bucket, Key=full, Body=data, **self._checksum))
        self._remember(key)

    def put_new(self, key: str, data: bytes) -> bool:
        if is_content_addressed(key) and key in self._known:
            return False
        if self.conditional_writes is not False:
            created = self._put_if_absent(key, data)
            if created is not None:
                return created
        if self.exists(key):  # no conditional writes: HEAD then PUT can race (see module doc)
            return False
        self.put_bytes(key, data)
        return True

    def _put_if_absent(self, key: str, data: bytes) -> bool | None:
        """True created, False already there, None: the endpoint has no conditional writes."""
        s3, full = self.client, self._full(key)
        try:
            self.call(key, lambda: s3.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*",
                                                 **self._checksum),
                      ok=frozenset({"PreconditionFailed", "NotImplemented", "501"}))
        except bex.ClientError as exc:
            code, _ = error_code(exc)
            if code in ("NotImplemented", "501") and self.conditional_writes is None:
                self.conditional_writes = False
                return None
            if code != "PreconditionFailed":
                raise self._describe(exc, key) from exc
            self._remember(key)
            if is_content_addressed(key):
                return False  # whoever stored it stored these very bytes
            # An earlier attempt may have been stored with its answer lost: then the object
            # there is ours. Its bytes tell, not its ETag: the ETag of an SSE-KMS (or
            # multipart) object is no MD5 of its content.
            retried = getattr(exc, "mfc_attempts", 1) > 1 or exc.response.get("ResponseMetadata", {}).get(
                "RetryAttempts", 0) > 0
            return bool(retried and self._holds(key, data))
        self._remember(key)
        return True

    def _holds(self, key: str, data: bytes) -> bool:
        """Whether the object under key is exactly ``data``."""
        try:
            return self.get_bytes(key) == data
        except BlobNotFound:
            return False

    def put_if(self, key: str, data: bytes, version: str | None) -> bool:
        """A conditional put: ``If-Match`` on the ETag read, or ``If-None-Match: *`` to create.
        Without conditional writes on the endpoint: HEAD then PUT, which two writers racing
        within one round trip can both pass (see the module doc)."""
        if version is None:
            return self.put_new(key, data)
        s3, full = self.client, self._full(key)
        if self.conditional_writes is not False:
            try:
                self.call(key, lambda: s3.put_object(Bucket=self.bucket, Key=full, Body=data, IfMatch=version,
                                                     **self._checksum), ok=_CONFLICT | _MISSING)
                return True
            except bex.ClientError as exc:
                if error_code(exc)[0] not in ("NotImplemented", "501"):
                    return False  # changed or removed since it was read, or another conditional write won
                if self.conditional_writes:
                    raise self._describe(exc, key) from exc
                self.conditional_writes = False
        if self._etag(key) != version:
            return False
        self.put_bytes(key, data)
        return True

    def put_file(self, key: str, path: str) -> None:
        if is_content_addressed(key) and key in self._known:
            os.unlink(path)
            return
        s3, full = self.client, self._full(key)
        threshold = self.multipart_threshold
        if threshold is None:
            threshold = LOCAL_MULTIPART_THRESHOLD if self._on_this_machine() else MULTIPART_THRESHOLD
        if os.path.getsize(path) < threshold:
            def upload() -> Any:
                with open(path, "rb") as fh:  # reopened on each retry: the body starts at 0
                    return s3.put_object(Bucket=self.bucket, Key=full, Body=fh, **self._checksum)
        else:
            def upload() -> Any:  # multipart, parts in parallel; S3 shows it only once complete
                return self._transfer().upload(path, self.bucket, full, extra_args=dict(self._checksum)).result()
        self.call(key, upload)
        os.unlink(path)
        self._remember(key)

    def _transfer(self) -> Any:
        state = self._state()
        if state.transfer is None:
            from s3transfer.manager import TransferConfig, TransferManager

            with self._lock:
                if state.transfer is None:
                    state.transfer = TransferManager(state.client, TransferConfig(
                        multipart_threshold=UPLOAD_PART_SIZE, multipart_chunksize=UPLOAD_PART_SIZE,
                        max_request_concurrency=UPLOAD_CONCURRENCY, max_in_memory_upload_chunks=UPLOAD_CONCURRENCY,
                    ))
        return state.transfer

    def _remember(self, key: str) -> None:
        if is_content_addressed(key):
            self._known.add(key)

    def delete(self, key: str) -> None:
        s3, full = self.client, self._full(key)
        self._known.discard(key)
        self.call(key, lambda: s3.delete_object(Bucket=self.bucket, Key=full))

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several blobs (1,000 per request, requests in parallel)."""
        keys = list(keys)
        self._known.difference_update(keys)
        s3 = self.client

        def batch(chunk: list[str]) -> None:
            objects = [{"Key": self._full(k)} for k in chunk]
            answer = self.call(chunk[0], lambda: s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}))
            for failed in answer.get("Errors", []):
                raise S3Error(f"S3 could not delete s3://{self.bucket}/{failed.get('Key')}: "
                              f"{failed.get('Code')}: {failed.get('Message')}")

        self.map(batch, [keys[i:i + 1000] for i in range(0, len(keys), 1000)])

    # -- reads ------------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return key in self._known or self.head(key) is not None

    def size(self, key: str) -> int | None:
        return None if (info := self.head(key)) is None else info.size

    def _etag(self, key: str) -> str | None:
        return None if (info := self.head(key)) is None else info.etag

    def head(self, key: str) -> ObjectInfo | None:
        """What one HEAD request says of the object under ``key`` (size, content type, user
        metadata, last-modified time, ETag); None when there is none. A missing bucket is an S3Error."""
        s3, full = self.client, self._full(key)
        try:
            answer = self.call(key, lambda: s3.head_object(Bucket=self.bucket, Key=full), ok=_MISSING)
        except bex.ClientError:
            self._check_bucket()
            return None
        self._remember(key)
        return ObjectInfo.of(key, answer)

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        """The object and its ETag, from one GET (so the two always belong together)."""
        s3, full, url = self.client, self._full(key), self._url(key)

        def fetch() -> tuple[bytes, str]:
            answer = whole(s3.get_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED"), url,
                           "ETag", "ContentLength")
            return bytes(read_exactly(answer["Body"], answer["ContentLength"])), answer["ETag"]

        try:
            return self.call(key, fetch, ok=_MISSING)
        except bex.ClientError:
            raise BlobNotFound(key) from None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        s3, full = self.client, self._full(key)

        def fetch() -> bytes:
            answer = s3.get_object(Bucket=self.bucket, Key=full, Range=f"bytes={start}-{start + length - 1}")
            with answer["Body"] as body:
                return body.read()

        try:
            return self.call(key, fetch, ok=_MISSING | {"InvalidRange"})
        except bex.ClientError as exc:
            if error_code(exc)[0] == "InvalidRange":  # wholly past the end
                return b""
            raise BlobNotFound(key) from None

    def open(self, key: str) -> BinaryIO:
        return io.BufferedReader(self._reader(key), buffer_size=256 * 1024)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._read_all(key)
        except BlobCorrupt:
            return self._read_all(key)  # once more: corruption in transit should not repeat

    def _read_all(self, key: str) -> bytes:
        with self._reader(key) as reader:
            buffer = bytearray(reader.size)
            view, done = memoryview(buffer), 0
            while True:
                got = reader.readinto(view[done:])
                if not got:
                    break
                done += got
            if done != reader.size:
                raise S3Error(f"{self._url(key)}: read {done} of {reader.size} bytes")
            view.release()
            return bytes(buffer)

    def _reader(self, key: str) -> S3Reader:
        """A raw stream of one object; the first GET happens here (BlobNotFound if missing).
        Content-addressed objects are checked by their own address (and may be read as parallel
        ranges), others come in one GET whose checksum botocore verifies."""
        check = content_check(key, self._url(key), BlobCorrupt) if self.verify_data else None
        s3, full = self.client, self._full(key)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if check is None:
            params["ChecksumMode"] = "ENABLED"
        elif self._parallel_reads():
            params["Range"] = f"bytes=0-{self.part_size - 1}"  # the answer says the whole size
        url = self._url(key)

        def first() -> dict:
            answer = s3.get_object(**params)
            partial = answer.get("ResponseMetadata", {}).get("HTTPStatusCode") == 206
            return whole(answer, url, "ContentLength", "ETag", *(["ContentRange"] if partial else []))

        try:
            answer = self.call(key, first, ok=_MISSING | {"InvalidRange"})
        except bex.ClientError as exc:
            if error_code(exc)[0] != "InvalidRange":  # an empty object has no byte 0
                raise BlobNotFound(key) from None
            params.pop("Range", None)
            answer = self.call(key, first, ok=_MISSING)
        body_end = answer["ContentLength"]
        size = int(answer["ContentRange"].rsplit("/", 1)[1]) if answer.get("ContentRange") else body_end
        if check is not None and size >= BACKGROUND_CHECK:
            check.behind()
        self._remember(key)
        ranged = functools.partial(ranged_body, s3, {"Bucket": self.bucket, "Key": full, "IfMatch": answer["ETag"]}, url)

        return S3Reader(
            answer["Body"], body_end, size, url=url, info=ObjectInfo.of(key, answer, size),
            reopen=lambda start, end: self.call(key, lambda: ranged(start, end)),
            fetch=lambda start, end: self.call(key, lambda: read_exactly(ranged(start, end), end - start)),
            submit=self._state().parts.submit, part_size=self.part_size, window=self.read_window,
            check=check, max_drops=self.retry_attempts * 2, wait_max=self.retry_wait_max,
        )

    def _parallel_reads(self) -> bool:
        return not self._on_this_machine() if self.parallel_reads is None else self.parallel_reads

    def _on_this_machine(self) -> bool:
        if self._local is None:
            self._local = is_local_endpoint(self.client.meta.endpoint_url)
        return self._local

    def list_objects(self, prefix: str, recursive: bool = False) -> list[ObjectInfo]:
        """The objects under the '/'-terminated ``prefix`` (a '/' is added to one without), keys
        relative to the store's prefix: its direct children, "directories" as common prefixes
        (``size`` None, no trailing '/'), or with ``recursive`` every object below it. Pages of
        1,000 are fetched one after the other, each retried."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        s3, url, cut = self.client, self._url(prefix), len(self.prefix)
        found: list[ObjectInfo] = []
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._full(prefix)}
        if not recursive:
            params["Delimiter"] = "/"

        def list_page(request: dict[str, Any]) -> dict:
            return whole(s3.list_objects_v2(**request), url, "IsTruncated")

        while True:
            page = self.call(prefix, functools.partial(list_page, dict(params)))
            found += [ObjectInfo(c["Prefix"][cut:].rstrip("/")) for c in page.get("CommonPrefixes", ())]
            found += [ObjectInfo.of(o["Key"][cut:], o) for o in page.get("Contents", ())]
            if not page.get("IsTruncated"):
                return found
            params["ContinuationToken"] = page["NextContinuationToken"]

    def list(self, prefix: str) -> list[str]:
        start = len(prefix) + (1 if prefix and not prefix.endswith("/") else 0)
        return [name for info in self.list_objects(prefix) if (name := info.key[start:])]

    # -- batches ----------------------------------------------------------------------------------
    def exists_many(self, keys: Iterable[str]) -> set[str]:
        keys = list(dict.fromkeys(keys))
        return {key for key, there in zip(keys, self.map(self.exists, keys), strict=True) if there}

    def put_many(self, items: dict[str, bytes]) -> None:
        """Write several blobs in parallel. Content-addressed keys are written create-only, so an
        object that is already stored is never rewritten."""
        def put(item: tuple[str, bytes]) -> None:
            if is_content_addressed(item[0]):
                self.put_new(*item)
            else:
                self.put_bytes(*item)

        self.map(put, items.items())

    def put_new_many(self, items: dict[str, bytes]) -> set[str]:
        """Create-only writes of several blobs in parallel; the keys this call created."""
        pairs = list(items.items())
        created = self.map(lambda item: self.put_new(*item), pairs)
        return {key for (key, _), made in zip(pairs, created, strict=True) if made}

    def put_files(self, items: dict[str, str]) -> None:
        """Upload several files in parallel (each consumed as by put_file)."""
        self.map(lambda item: self.put_file(*item), items.items())

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))

        def get(key: str) -> bytes | None:
            try:
                return self.get_bytes(key)
            except BlobNotFound:
                return None

        return {key: data for key, data in zip(keys, self.map(get, keys), strict=True) if data is not None}

    def get_files(self, keys: Iterable[str], directory: str) -> dict[str, tuple[str, ObjectInfo]]:
        """Download several objects in parallel, each streamed into a new file in ``directory``
        (read as :meth:`open` reads it: one GET, or parallel ranged GETs for a large
        content-addressed object; no whole object is held in memory); ``{key: (path, info)}``
        with the info of the GET, missing keys left out."""
        keys = list(dict.fromkeys(keys))

        def fetch(key: str, path: str) -> ObjectInfo:
            with self._reader(key) as reader, open(path, "wb") as out:
                reader.copy_to(out)
                return ObjectInfo(key) if reader.info is None else reader.info

        def get(key: str) -> tuple[str, ObjectInfo] | None:
            path = os.path.join(directory, uuid.uuid4().hex)
            try:
                try:
                    return path, fetch(key, path)
                except BlobCorrupt:
                    return path, fetch(key, path)  # once more, as get_bytes does
            except BlobNotFound:
                return None
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                raise

        return {key: got for key, got in zip(keys, self.map(get, keys), strict=True) if got is not None}

    # -- local side -------------------------------------------------------------------------------
    def local_path(self, key: str) -> None:
        return None

    def staging_dir(self) -> str:
        """A private local directory for files spooled before upload (put_file consumes them);
        one per user, shared by the orchestrator and its tasks."""
        return staging_directory()

    def close(self) -> None:
        """Stop this process's thread pools (they also end with the process)."""
        state, self._state_ = self._state_, None
        if state is not None and state.pid == os.getpid():
            if state.transfer is not None:
                state.transfer.shutdown()
            state.pool.shutdown(wait=False)
            state.parts.shutdown(wait=False)


__all__ = ["S3BlobStore", "S3Error", "BlobCorrupt", "ObjectInfo", "parse_root"]
